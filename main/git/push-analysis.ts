// Turns a pushed pack plus its ref commands into RefUpdateViews for reviewers.
// The pack is indexed into a quarantine object directory (like receive-pack does);
// the per-remote cache is an alternate, so thin packs resolve and nothing touches the cache.
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { CommitView, FileDiffView, FileStatus, RefChange, RefUpdateView } from '../contract/views';
import { git, GIT_NO_CONFIG, type GitOptions } from './git-cli';
import { GitError, GitMissingObjectsError, PushNotShowableError } from './errors';
import type { RefCommand } from './receive-pack';
import { isZeroOid } from './receive-pack';

export interface AnalysisLimits {
  maxFilesPerRef?: number;
  maxPatchBytesPerFile?: number;
  maxCommitsPerRef?: number;
  /**
   * Ref updates analysed in full (commits, files) per push; the rest are listed with their names,
   * object ids and whether they create or delete, and say they were not analysed. A mirror or
   * all-tags push of thousands of refs would otherwise take minutes (~40 ms per ref) and make a
   * review no one can read.
   */
  maxRefs?: number;
  /** Bytes of the file list (`git diff --raw --numstat`) past which a push is refused as not showable (default 16 MiB). */
  maxFileListBytes?: number;
  /**
   * Bytes of patch output (`git diff -p`) read per ref (default 256 MiB); then git is stopped, and the
   * file being read and those after it are shown without (the rest of) their diffs, with their line
   * counts, and say so.
   */
  maxDiffBytesPerRef?: number;
}

/** Ref updates analysed two at a time: each runs its own git processes (this machine has two cores). */
const REF_CONCURRENCY = 2;

export interface AnalysePushOptions {
  cacheDir: string;
  /** The pack bytes, already spooled to a file; null for delete-only pushes. */
  packFile: string | null;
  commands: RefCommand[];
  /** e.g. 'main'; otherwise the cache's HEAD. */
  defaultBranch?: string;
  limits?: AnalysisLimits;
  /** Per git command (default 5 minutes). */
  timeoutMs?: number;
  /**
   * Where the quarantine directory (the push's indexed objects: the pushed code itself) is made:
   * the gateway names its spool, which it empties at start, so a crash leaves no copy behind in the
   * OS temporary directory. Default: the OS temporary directory.
   */
  quarantineParent?: string;
}

export interface PushAnalysis {
  refs: RefUpdateView[];
  /** Holds the indexed pack; remove with cleanupQuarantine() when done. */
  quarantineDir: string;
  /** Wall-clock milliseconds: index-pack, and everything after it. */
  timings: { indexPackMs: number; analysisMs: number };
}

export const EMPTY_TREE_SHA1 = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
export const EMPTY_TREE_SHA256 = '6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321';

const MISSING_OBJECTS = /unable to read [0-9a-f]{40}|unresolved delta|missing (blob|tree|commit|tag) |bad object|could not read [0-9a-f]{40}|did not receive expected object/i;

const DIFF_FLAGS = ['--no-color', '--no-ext-diff', '--no-textconv', '--ignore-submodules=none', '-M', '-C'];

/** The name of every quarantine directory starts with this (`clearSpool` looks for it). */
export const QUARANTINE_PREFIX = 'airlock-quarantine-';

export async function cleanupQuarantine(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
}

export async function analysePush(opts: AnalysePushOptions): Promise<PushAnalysis> {
  const parent = opts.quarantineParent ?? tmpdir();
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const quarantineDir = await mkdtemp(join(parent, QUARANTINE_PREFIX));
  try {
    const timings = { indexPackMs: 0, analysisMs: 0 };
    const refs = await analyseInQuarantine(opts, quarantineDir, timings);
    return { refs, quarantineDir, timings };
  } catch (e) {
    await cleanupQuarantine(quarantineDir).catch(() => undefined);
    if (e instanceof GitError && !(e instanceof GitMissingObjectsError) && MISSING_OBJECTS.test(e.stderr)) {
      throw new GitMissingObjectsError(e);
    }
    throw e;
  }
}

async function analyseInQuarantine(opts: AnalysePushOptions, quarantineDir: string,
  timings: PushAnalysis['timings']): Promise<RefUpdateView[]> {
  const limits = {
    maxFilesPerRef: opts.limits?.maxFilesPerRef ?? 300,
    maxPatchBytesPerFile: opts.limits?.maxPatchBytesPerFile ?? 64 * 1024,
    maxCommitsPerRef: opts.limits?.maxCommitsPerRef ?? 200,
    maxRefs: opts.limits?.maxRefs ?? 100,
    maxFileListBytes: opts.limits?.maxFileListBytes ?? MAX_FILE_LIST_BYTES,
    maxDiffBytesPerRef: opts.limits?.maxDiffBytesPerRef ?? MAX_DIFF_BYTES_PER_REF,
  };
  const cacheDir = resolve(opts.cacheDir);
  const objectsDir = join(quarantineDir, 'objects');
  await mkdir(join(objectsDir, 'pack'), { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GIT_')) delete env[k];
  env.GIT_CONFIG_GLOBAL = GIT_NO_CONFIG;
  env.GIT_OBJECT_DIRECTORY = objectsDir;
  env.GIT_ALTERNATE_OBJECT_DIRECTORIES = join(cacheDir, 'objects');
  const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
  const run = (args: string[], o: Partial<GitOptions> = {}) =>
    git(['--git-dir', cacheDir, ...args], { env, timeoutMs, ...o });

  const t0 = performance.now();
  if (opts.packFile) {
    await run(['index-pack', '--stdin', '--fix-thin'], { input: createReadStream(opts.packFile), name: 'git index-pack' });
  }
  const t1 = performance.now();
  timings.indexPackMs = Math.round(t1 - t0);

  const defaultRef = await findDefaultRef(run, opts.defaultBranch);
  // Types of every non-zero oid and what they peel to, in one call ("<expr> missing" when absent).
  const oids = [...new Set(opts.commands.flatMap((c) => [c.oldOid, c.newOid]).filter((o) => !isZeroOid(o)))];
  const exprs = [...oids.flatMap((o) => [o, `${o}^{commit}`, `${o}^{tree}`]), ...(defaultRef ? [`${defaultRef}^{commit}`] : [])];
  const objects = await resolveExprs(run, exprs);
  const types = new Map<string, string>();
  for (const o of oids) { const t = objects.get(o); if (t) types.set(o, t.type); }
  const ctx: RefContext = {
    run, limits, types, objects, defaultRef: defaultRef && objects.has(`${defaultRef}^{commit}`) ? defaultRef : null,
  };
  // Which updates get the full analysis when there are too many: branches (and other non-tag refs)
  // before tags, so a branch update cannot hide behind a hundred tags; the display keeps push order.
  const order = opts.commands.map((c, i) => i);
  order.sort((a, b) => Number(opts.commands[a]!.ref.startsWith('refs/tags/')) - Number(opts.commands[b]!.ref.startsWith('refs/tags/')) || a - b);
  const full = order.slice(0, limits.maxRefs);
  const out: RefUpdateView[] = opts.commands.map((cmd) => listedRef(cmd, limits.maxRefs, opts.commands.length));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < full.length) {
      const i = full[next++]!;
      out[i] = await analyseRef(ctx, opts.commands[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(REF_CONCURRENCY, full.length) }, worker));
  timings.analysisMs = Math.round(performance.now() - t1);
  return out;
}

type Run = (args: string[], o?: Partial<GitOptions>) => ReturnType<typeof git>;
interface RefContext {
  run: Run;
  limits: Required<AnalysisLimits>;
  types: Map<string, string>;
  /** `git cat-file --batch-check` answers by expression: oid and type. */
  objects: Map<string, { oid: string; type: string }>;
  defaultRef: string | null;
}

async function resolveExprs(run: Run, exprs: string[]): Promise<Map<string, { oid: string; type: string }>> {
  const out = new Map<string, { oid: string; type: string }>();
  if (exprs.length === 0) return out;
  const r = await run(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input: Buffer.from(exprs.map((e) => `${e}\n`).join('')) });
  const lines = r.stdout.toString('utf8').split('\n');
  exprs.forEach((e, i) => {
    const [oid, type] = (lines[i] ?? '').split(' ');
    if (['commit', 'tree', 'blob', 'tag'].includes(type)) out.set(e, { oid, type });
  });
  return out;
}

async function findDefaultRef(run: Run, defaultBranch?: string): Promise<string | null> {
  if (defaultBranch) return defaultBranch.startsWith('refs/') ? defaultBranch : `refs/heads/${defaultBranch}`;
  const r = await run(['symbolic-ref', '-q', 'HEAD'], { okCodes: [0, 1, 128] });
  return r.code === 0 ? r.stdout.toString('utf8').trim() || null : null;
}

function short(oid: string): string {
  return oid.slice(0, 12);
}

function shortRef(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}

/** A ref update beyond `maxRefs`: named, with its object ids and create/delete, not analysed. */
function listedRef(cmd: RefCommand, maxRefs: number, total: number): RefUpdateView {
  const change: RefChange = isZeroOid(cmd.newOid) ? 'delete' : isZeroOid(cmd.oldOid) ? 'create' : 'update';
  return {
    ref: cmd.ref, oldOid: cmd.oldOid, newOid: cmd.newOid, change, commits: [], base: 'not analysed', files: [],
    omitted: `Not analysed: this push updates ${fmtCount(total)} refs, and ${fmtCount(maxRefs)} are analysed in full (commits and files), branches before tags.`,
  };
}

async function analyseRef(ctx: RefContext, cmd: RefCommand): Promise<RefUpdateView> {
  const { run, types } = ctx;
  const view: RefUpdateView = {
    ref: cmd.ref, oldOid: cmd.oldOid, newOid: cmd.newOid, change: 'update', commits: [], base: '', files: [], omitted: null,
  };
  const notes: string[] = [];
  if (isZeroOid(cmd.newOid)) {
    view.change = 'delete';
    view.base = 'none (ref deleted)';
    return view;
  }
  const emptyTree = cmd.newOid.length === 64 ? EMPTY_TREE_SHA256 : EMPTY_TREE_SHA1;
  if (!types.has(cmd.newOid)) {
    // Upstream may have it outside its branches and tags (a pull request's head): whatever it holds,
    // nobody could review it here.
    throw new PushNotShowableError(`the new object ${short(cmd.newOid)} for ${cmd.ref} is in neither the pushed pack nor upstream's branches and tags, so Airlock cannot show what it would land`);
  }
  const newCommit = ctx.objects.get(`${cmd.newOid}^{commit}`)?.oid ?? null;
  const isCreate = isZeroOid(cmd.oldOid);
  const oldKnown = !isCreate && types.has(cmd.oldOid);

  // Change kind
  let change: RefChange;
  if (isCreate) change = 'create';
  else if (!cmd.ref.startsWith('refs/tags/') && types.get(cmd.oldOid) === 'commit' && types.get(cmd.newOid) === 'commit') {
    const r = await run(['merge-base', '--is-ancestor', cmd.oldOid, cmd.newOid], { okCodes: [0, 1] });
    change = r.code === 0 ? 'fast-forward' : 'forced';
  } else change = 'update';
  view.change = change;

  // Commits (in parallel with the diff below)
  const commitsDone = newCommit
    ? listCommits(run, oldKnown ? [newCommit, '--not', cmd.oldOid] : [newCommit, '--not', '--branches', '--tags'], ctx.limits.maxCommitsPerRef)
    : Promise.resolve({ commits: [] as CommitView[], total: 0 });
  commitsDone.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile

  // Diff base
  let base: string;
  if (oldKnown) {
    base = cmd.oldOid;
    view.base = `previous tip of ${shortRef(cmd.ref)} (${short(cmd.oldOid)})`;
  } else {
    let mb: string | null = null;
    if (ctx.defaultRef && newCommit) {
      const r = await run(['merge-base', ctx.defaultRef, newCommit], { okCodes: [0, 1] });
      mb = r.code === 0 ? r.stdout.toString('utf8').trim().split('\n')[0] : null;
    }
    const lead = isCreate ? '' : `previous tip ${short(cmd.oldOid)} not found upstream; `;
    if (mb) {
      base = mb;
      // A branch or tag made from an old commit lands that commit's whole tree, not only the diff shown:
      // how far behind the default branch it starts is part of what the reviewer must see.
      const behind = await run(['rev-list', '--count', `${mb}..${ctx.defaultRef!}`], { okCodes: [0, 128] });
      const n = behind.code === 0 ? Number(behind.stdout.toString('utf8').trim()) : 0;
      view.base = `${lead}merge-base with ${shortRef(ctx.defaultRef!)} (${short(mb)})` +
        (n > 0 ? `, ${fmtCount(n)} ${plural(n, 'commit')} behind ${shortRef(ctx.defaultRef!)}: what ${shortRef(ctx.defaultRef!)} changed since is not in it` : '');
    } else {
      base = emptyTree;
      view.base = `${lead}empty tree (${ctx.defaultRef ? `no common history with ${shortRef(ctx.defaultRef)}` : 'no default branch upstream'})`;
    }
  }

  // Files
  const target = newCommit ?? cmd.newOid;
  const hasTree = ctx.objects.has(`${cmd.newOid}^{tree}`);
  const baseHasTree = base === emptyTree || base !== cmd.oldOid || ctx.objects.has(`${cmd.oldOid}^{tree}`);
  if (!hasTree || !baseHasTree) {
    notes.push(`no file diff: ${!hasTree ? `the new ${types.get(cmd.newOid)} has no tree` : 'the base has no tree'}`);
  } else {
    const { files, more, unread } = await diffFiles(ctx, base, target);
    view.files = files;
    if (unread > 0) notes.push(`${fmtCount(unread)} ${plural(unread, 'file')} shown without all of ${unread === 1 ? 'its diff' : 'their diffs'}: the diff of this ref passed ${fmtBytes(ctx.limits.maxDiffBytesPerRef)}, and Airlock read no further`);
    if (more > 0) notes.push(`${fmtCount(more)} more ${plural(more, 'file')} listed without their diffs (the first ${fmtCount(ctx.limits.maxFilesPerRef)} files have diffs)`);
  }
  const { commits, total } = await commitsDone;
  view.commits = commits;
  // An annotated tag's own message and tagger are part of what lands: shown first, like a commit.
  if (types.get(cmd.newOid) === 'tag') view.commits.unshift(await tagAsCommit(run, cmd.newOid));
  if (total > commits.length) notes.unshift(`${fmtCount(total - commits.length)} more ${plural(total - commits.length, 'commit')} not shown`);
  view.omitted = notes.length > 0 ? notes.join('; ') : null;
  return view;
}

/** An annotated tag object as a commit-like entry: `tag NAME` by its tagger, with its message. */
async function tagAsCommit(run: Run, oid: string): Promise<CommitView> {
  const text = (await run(['cat-file', 'tag', oid])).stdout.toString('utf8');
  const blank = text.indexOf('\n\n');
  const head = blank === -1 ? text : text.slice(0, blank);
  const message = blank === -1 ? '' : text.slice(blank + 2);
  const field = (name: string) => new RegExp(`^${name} (.*)$`, 'm').exec(head)?.[1] ?? '';
  const tagger = field('tagger');
  const m = /^(.*?) (\d+) [+-]\d{4}$/.exec(tagger);
  return {
    oid,
    author: m ? m[1]! : tagger,
    authorDate: m ? new Date(Number(m[2]) * 1000).toISOString() : '',
    committer: `annotated tag ${field('tag')} on ${field('type')} ${short(field('object'))}`,
    message: `[annotated tag ${field('tag')}] ${message}`,
  };
}

// ---------- commits ----------

async function listCommits(run: Run, range: string[], cap: number): Promise<{ commits: CommitView[]; total: number }> {
  const list = await run(['rev-list', ...range]);
  const all = list.stdout.toString('utf8').split('\n').filter(Boolean);
  const oids = all.slice(0, Math.max(0, cap));
  if (oids.length === 0) return { commits: [], total: all.length };
  const raw = await run(['cat-file', '--batch'], { input: Buffer.from(oids.map((o) => `${o}\n`).join('')) });
  return { commits: parseCommitBatch(raw.stdout), total: all.length };
}

/** Parses `git cat-file --batch` output of commit objects. */
export function parseCommitBatch(buf: Buffer): CommitView[] {
  return parseObjectBatch(buf).filter((o) => o.type === 'commit').map((o) => parseCommit(o.oid, o.body));
}

/** Parses `git cat-file --batch` output: each object's oid, type and content (objects git reports missing are left out). */
function parseObjectBatch(buf: Buffer): Array<{ oid: string; type: string; body: Buffer }> {
  const out: Array<{ oid: string; type: string; body: Buffer }> = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) break;
    const [oid, type, sizeStr] = buf.toString('latin1', pos, nl).split(' ');
    const size = parseInt(sizeStr ?? '', 10);
    pos = nl + 1;
    if (!Number.isFinite(size)) continue; // "<oid> missing"
    out.push({ oid: oid!, type: type!, body: buf.subarray(pos, pos + size) });
    pos += size + 1;
  }
  return out;
}

function parseCommit(oid: string, body: Buffer): CommitView {
  const sep = body.indexOf('\n\n');
  const head = body.toString('utf8', 0, sep < 0 ? body.length : sep);
  const message = sep < 0 ? '' : body.toString('utf8', sep + 2).replace(/\n+$/, '');
  let author = '';
  let authorDate = '';
  let committer = '';
  for (const line of head.split('\n')) {
    const m = /^(author|committer) (.*) (-?\d+) ([+-]\d{4})$/.exec(line);
    if (!m) continue;
    if (m[1] === 'author') {
      author = m[2];
      authorDate = isoDate(parseInt(m[3], 10), m[4]);
    } else committer = m[2];
  }
  return { oid, author, authorDate, committer, message };
}

/** Git timestamp + zone → strict ISO 8601 in that zone (like %aI). */
export function isoDate(seconds: number, tz: string): string {
  const sign = tz[0] === '-' ? -1 : 1;
  const offMin = sign * (parseInt(tz.slice(1, 3), 10) * 60 + parseInt(tz.slice(3, 5), 10));
  const d = new Date((seconds + offMin * 60) * 1000);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.toISOString().slice(0, 19)}${tz.slice(0, 3)}:${tz.slice(3, 5)}`;
}

// ---------- files ----------

interface RawEntry {
  status: FileStatus;
  letter: string;
  oldMode: string;
  newMode: string;
  oldOid: string;
  newOid: string;
  path: string;
  oldPath: string | null;
}

/** Parses `git diff --raw --numstat -z --no-abbrev`: raw entries, then one numstat entry each (null = binary). */
export function parseRawNumstat(buf: Buffer): { raw: RawEntry[]; nums: Array<[number, number] | null> } {
  const toks = buf.toString('utf8').split('\0');
  const raw: RawEntry[] = [];
  let i = 0;
  while (i < toks.length && toks[i].startsWith(':')) {
    const [oldMode, newMode, oldOid, newOid, st] = toks[i++].slice(1).split(' ');
    const letter = st[0];
    let path: string;
    let oldPath: string | null = null;
    if (letter === 'R' || letter === 'C') { oldPath = toks[i++]; path = toks[i++]; } else path = toks[i++];
    let status: FileStatus;
    switch (letter) {
      case 'A': status = 'added'; break;
      case 'D': status = 'deleted'; break;
      case 'R': status = 'renamed'; break;
      case 'C': status = 'copied'; break;
      case 'T': status = 'type-change'; break;
      default: status = oldOid === newOid && oldMode !== newMode ? 'mode-change' : 'modified';
    }
    raw.push({ status, letter, oldMode, newMode, oldOid, newOid, path, oldPath });
  }
  const nums: Array<[number, number] | null> = [];
  while (i < toks.length) {
    const t = toks[i++];
    if (t === '') continue;
    const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(t);
    if (!m) continue;
    if (m[3] === '') i += 2; // rename/copy: old and new path follow
    nums.push(m[1] === '-' ? null : [parseInt(m[1], 10), parseInt(m[2], 10)]);
  }
  return { raw, nums };
}

function modeOrNull(mode: string): string | null {
  return /^0+$/.test(mode) ? null : mode;
}

/** Bytes of `git diff --raw --numstat` output (about 150 000 files) past which a push is not shown but refused. */
const MAX_FILE_LIST_BYTES = 16 * 1024 * 1024;

/**
 * Bytes of `git diff -p` output read per ref. What is kept of it is bounded per file
 * (maxPatchBytesPerFile), and the rest is passed over without being split into lines (256 MiB in
 * about 0.1 s of the gateway's thread; reading it from git's pipe costs about 1 s of CPU more), but
 * git still makes all of it: a 60 KB pack of one 60 MiB file of short lines is 90 MiB of diff and
 * about 4 s of git's time. Past this bound git is stopped. The files not
 * read to their end are still listed with their line counts (from numstat) and say their diff is not
 * shown in full: like the files past maxFilesPerRef, the push is held, not refused. The bound is well
 * above what a reviewer could read (300 files × 64 KiB kept is under 20 MiB).
 */
const MAX_DIFF_BYTES_PER_REF = 256 * 1024 * 1024;

async function diffFiles(ctx: RefContext, base: string, target: string): Promise<{ files: FileDiffView[]; more: number; unread: number }> {
  const { run, limits } = ctx;
  // The file list is collected up to a bound: a small pack can name a tree of millions of entries, and
  // parsing hundreds of MB of it would hold the gateway's thread for seconds. Past the bound the push
  // cannot be shown in full, so it is refused (fail closed).
  const chunks: Buffer[] = [];
  let listBytes = 0;
  let tooMany = false;
  await run(['diff', '--raw', '--numstat', '-z', '--no-abbrev', ...DIFF_FLAGS, base, target], {
    onStdout: (c) => {
      listBytes += c.length;
      if (listBytes > limits.maxFileListBytes) {
        tooMany = true;
        return false;
      }
      chunks.push(c);
    },
  });
  if (tooMany) throw new PushNotShowableError(`this push changes more files than Airlock can list (the list passes ${fmtBytes(limits.maxFileListBytes)})`);
  const { raw, nums } = parseRawNumstat(Buffer.concat(chunks));
  if (raw.length === 0) return { files: [], more: 0, unread: 0 };
  const shown = raw.slice(0, limits.maxFilesPerRef);
  // Files past the limit are still listed (path, status, modes, line counts), without a diff: none is invisible.
  const listed = raw.slice(limits.maxFilesPerRef).map((e, j): FileDiffView => {
    const ns = nums[limits.maxFilesPerRef + j];
    return {
      path: e.path, oldPath: e.oldPath, status: e.status, binary: ns === null, oldSize: null, newSize: null,
      oldMode: modeOrNull(e.oldMode), newMode: modeOrNull(e.newMode), additions: ns ? ns[0] : 0, deletions: ns ? ns[1] : 0,
      patch: '', omitted: `diff not shown: this ref changes ${fmtCount(raw.length)} files, and the first ${fmtCount(limits.maxFilesPerRef)} have diffs`,
    };
  });

  // Blob sizes (submodule entries have none).
  const sizeOids = [...new Set(shown.flatMap((e) => [
    e.oldMode !== '160000' && !isZeroOid(e.oldOid) ? e.oldOid : '',
    e.newMode !== '160000' && !isZeroOid(e.newOid) ? e.newOid : '',
  ]).filter(Boolean))];
  const sizes = new Map<string, number>();
  if (sizeOids.length > 0) {
    const r = await run(['cat-file', '--batch-check'], { input: Buffer.from(sizeOids.map((o) => `${o}\n`).join('')) });
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const [oid, type, size] = line.split(' ');
      if (type === 'blob') sizes.set(oid, parseInt(size, 10));
    }
  }

  // Patches, streamed and capped per file. A type change prints as two patches (delete + add).
  const headersPerEntry = shown.map((e) => (e.letter === 'T' ? 2 : 1));
  const splitter = new PatchSplitter(headersPerEntry, limits.maxPatchBytesPerFile);
  if (shown.length > 0) {
    // Read up to a bound in all (exactly, so that what is shown does not depend on how git's output
    // came in chunks); then git is stopped and what was not read is marked so.
    let read = 0;
    await run(['diff', '-p', '--src-prefix=a/', '--dst-prefix=b/', ...DIFF_FLAGS, base, target], {
      onStdout: (chunk) => {
        if (read + chunk.length > limits.maxDiffBytesPerRef) {
          splitter.push(chunk.subarray(0, limits.maxDiffBytesPerRef - read));
          read = limits.maxDiffBytesPerRef;
          splitter.truncate(limits.maxDiffBytesPerRef);
          return false;
        }
        read += chunk.length;
        return splitter.push(chunk);
      },
    });
    splitter.end();
  }

  let unread = 0;
  const files = shown.map((e, i): FileDiffView => {
    const ns = nums[i];
    const p = splitter.result(i, ns);
    const binary = ns === null || p.binary;
    if (p.unread && !binary) unread++;
    return {
      path: e.path,
      oldPath: e.oldPath,
      status: e.status,
      binary,
      oldSize: sizes.get(e.oldOid) ?? null,
      newSize: sizes.get(e.newOid) ?? null,
      oldMode: modeOrNull(e.oldMode),
      newMode: modeOrNull(e.newMode),
      additions: ns ? ns[0] : 0,
      deletions: ns ? ns[1] : 0,
      patch: binary ? '' : p.patch,
      omitted: binary ? null : p.omitted,
    };
  });
  await showTextInBinary(ctx, base, target, shown, files);
  return { files: [...files, ...listed], more: listed.length, unread };
}

/** Largest file (either side) that is looked at to be shown as text although git calls it binary. */
const TEXTISH_MAX_BYTES = 256 * 1024;
/** Files per ref looked at that way (each is one `git diff`), and their bytes in all. */
const TEXTISH_MAX_FILES = 50;
const TEXTISH_MAX_TOTAL_BYTES = 4 * 1024 * 1024;

/**
 * True when `buf` reads as text with a few odd bytes in it: at most 1% of its characters are
 * control characters (not tab, LF, CR, FF) or bytes that are not UTF-8. A script with one NUL
 * byte is text; an image, an archive or compiled code (about 10% control bytes, most of it not
 * UTF-8) is not.
 */
export function isMostlyText(buf: Buffer): boolean {
  if (buf.length === 0) return false;
  const text = buf.toString('utf8');
  let odd = 0;
  let n = 0;
  for (const ch of text) {
    n++;
    const c = ch.codePointAt(0)!;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x0c) || c === 0x7f || c === 0xfffd) odd++;
  }
  return odd <= Math.max(1, Math.floor(n / 100));
}

/**
 * A file git shows as binary (one NUL byte is enough) whose content is mostly text is shown as text
 * (`git diff --text`): a script with a NUL byte in it still runs, and the reviewer should read it.
 * The odd bytes stay in the patch; every view marks them (the console as ⟨U+0000⟩, the CLI escaped),
 * and the hidden-character findings name them. `binary` stays true: git does not call it text.
 * Only added and modified files (not renames or copies: one path, one patch), both sides at most
 * 256 KiB, at most 50 files and 4 MiB in all per ref.
 */
async function showTextInBinary(ctx: RefContext, base: string, target: string, shown: RawEntry[], files: FileDiffView[]): Promise<void> {
  const { run, limits } = ctx;
  // The blobs of an added file (its new side) or a modified one (both), with their sizes.
  const sidesOf = (i: number): Array<{ oid: string; mode: string; size: number | null }> => {
    const e = shown[i]!;
    const f = files[i]!;
    const added = { oid: e.newOid, mode: e.newMode, size: f.newSize };
    return e.letter === 'M' ? [added, { oid: e.oldOid, mode: e.oldMode, size: f.oldSize }] : [added];
  };
  const picked: number[] = [];
  let budget = TEXTISH_MAX_TOTAL_BYTES;
  for (let i = 0; i < shown.length && picked.length < TEXTISH_MAX_FILES; i++) {
    if (!files[i]!.binary || (shown[i]!.letter !== 'A' && shown[i]!.letter !== 'M')) continue;
    const sides = sidesOf(i);
    if (!sides.every((x) => /^100(644|755)$/.test(x.mode) && x.size !== null && x.size <= TEXTISH_MAX_BYTES)) continue;
    const total = sides.reduce((a, x) => a + x.size!, 0);
    if (total > budget) continue;
    budget -= total;
    picked.push(i);
  }
  if (picked.length === 0) return;
  const oids = picked.flatMap((i) => sidesOf(i).map((x) => x.oid));
  const batch = await run(['cat-file', '--batch'], { input: Buffer.from(oids.map((o) => `${o}\n`).join('')) });
  const blobs = new Map(parseObjectBatch(batch.stdout).map((o) => [o.oid, o.body]));
  for (const i of picked) {
    const e = shown[i]!;
    if (!sidesOf(i).every((x) => { const b = blobs.get(x.oid); return b !== undefined && isMostlyText(b); })) continue;
    // Every line is counted (numstat says "-" for a file git calls binary, even with --text): the
    // work is bounded by the sizes above.
    const splitter = new PatchSplitter([1], limits.maxPatchBytesPerFile, { countAll: true });
    await run(['--literal-pathspecs', 'diff', '-p', '--text', '--no-renames', '--src-prefix=a/', '--dst-prefix=b/',
      '--no-color', '--no-ext-diff', '--no-textconv', base, target, '--', e.path], { onStdout: (chunk) => { splitter.push(chunk); } });
    splitter.end();
    const p = splitter.result(0);
    files[i] = {
      ...files[i]!,
      additions: p.added,
      deletions: p.deleted,
      patch: p.patch,
      omitted: p.omitted,
    };
  }
}


function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

/** 1240 → '1 240'. */
export function fmtCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} ${plural(n, 'byte')}`;
  if (n < 1024 * 1024) return `${fmtCount(Math.round(n / 1024))} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The start of the line that opens each entry's patch in `git diff -p` output, with the newline before it. */
const DIFF_HEADER = Buffer.from('\ndiff --git ', 'latin1');
const DIFF_GIT = DIFF_HEADER.subarray(1);
const BINARY_FILES = Buffer.from('Binary files ', 'latin1');
const GIT_BINARY_PATCH = Buffer.from('GIT binary patch', 'latin1');
const NEWLINE = Buffer.from('\n', 'latin1');
const NOTHING = Buffer.alloc(0);

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  if (buf.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

interface PatchAcc {
  kept: Buffer[];
  keptBytes: number;
  inHunks: boolean;
  binary: boolean;
  /** Not all of its patch is kept: it passed `maxBytes`, or the output stopped before its end. */
  cut: boolean;
  /**
   * Bytes of git's patch text for this entry that are not kept: the first line that did not fit and
   * everything after it up to the next entry's `diff --git` line (for a type change cut in its first
   * half, that includes the few header lines of its second half).
   */
  omittedBytes: number;
  /** Added and deleted lines among the lines kept (all of them unless `cut`). */
  keptAdded: number;
  keptDeleted: number;
  /** Added and deleted lines in all (with `countAll` only; otherwise numstat's are given to `result`). */
  added: number;
  deleted: number;
  /** Its `diff --git` line was read. */
  reached: boolean;
  /** The output was stopped (`truncate`) before this entry's patch ended. */
  unread: boolean;
}

/**
 * Splits `git diff -p` output into per-entry patches (hunks only), keeping at most
 * `maxBytes` per entry on whole-line boundaries. Memory stays bounded even for enormous
 * single-line files, and so does the work: once an entry is cut, its lines are not looked at
 * one by one but passed over with a search for the next `diff --git` line (a small pack can make
 * git print tens of millions of lines of one file). Its line counts come from numstat, given to
 * `result`; with `countAll` (for output known to be small) every line is still read and counted.
 */
export class PatchSplitter {
  private readonly accs: PatchAcc[];
  private readonly headerOwner: number[] = [];
  private header = -1;
  private partial: Buffer[] = [];
  private partialLen = 0;
  private partialHead = NOTHING;
  private readonly spill: number;
  private stopped = false;
  /** The current entry is cut: input is passed over up to the next `diff --git` line. */
  private skipping = false;
  /** While skipping: where in the output passing over began. */
  private skipFrom = 0;
  /** While skipping: the last bytes passed over (fewer than DIFF_HEADER's), which may begin a header that a chunk boundary splits. */
  private tail = NOTHING;
  /** Bytes of output pushed in all. */
  private bytesRead = 0;
  /** The output bound that `truncate` was called for. */
  private truncatedAt: number | null = null;
  /** Lines this splitter looked at one by one (the work done per line). */
  linesHandled = 0;
  /** The same, for every splitter in this process (tests check the work per push stays bounded). */
  static linesHandled = 0;

  private readonly countAll: boolean;

  constructor(headersPerEntry: number[], private readonly maxBytes: number, opts: { countAll?: boolean } = {}) {
    this.accs = headersPerEntry.map(() => ({
      kept: [], keptBytes: 0, inHunks: false, binary: false, cut: false, omittedBytes: 0,
      keptAdded: 0, keptDeleted: 0, added: 0, deleted: 0, reached: false, unread: false,
    }));
    this.countAll = opts.countAll ?? false;
    headersPerEntry.forEach((n, i) => { for (let k = 0; k < n; k++) this.headerOwner.push(i); });
    this.spill = Math.max(maxBytes, 1024 * 1024);
  }

  /** Returns false once every expected entry has been read (the rest may be skipped). */
  push(chunk: Buffer): boolean {
    if (this.stopped) return false;
    const base = this.bytesRead;
    this.bytesRead += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.skipping) {
        pos = this.skip(chunk, pos, base);
        continue;
      }
      const nl = chunk.indexOf(0x0a, pos);
      if (nl >= 0 && this.partialLen === 0) {
        // A whole line in this chunk (the usual case): looked at where it is.
        const l = chunk.subarray(pos, nl + 1);
        pos = nl + 1;
        this.line(l, l.length, l);
      } else {
        const end = nl < 0 ? chunk.length : nl + 1;
        this.take(chunk.subarray(pos, end));
        pos = end;
        if (nl < 0) continue;
        this.partialLine();
      }
      if (this.stopped) return false;
      if (this.skipping) {
        this.skipFrom = base + pos;
        this.tail = NEWLINE; // the byte just read: a header line follows a newline
      }
    }
    return true;
  }

  end(): void {
    if (this.stopped) return;
    if (this.skipping) this.stopSkipping(this.bytesRead);
    else if (this.partialLen > 0) this.partialLine();
  }

  /**
   * The output was stopped at a bound (`limit` bytes) before its end: the entry being read and those
   * not reached yet are marked as not read in full. Does nothing once every entry has been read.
   */
  truncate(limit: number): void {
    if (this.stopped) return;
    this.stopped = true;
    this.truncatedAt = limit;
    if (this.skipping) this.stopSkipping(this.bytesRead);
    const current = this.header >= 0 ? this.headerOwner[this.header]! : -1;
    for (let i = Math.max(current, 0); i < this.accs.length; i++) {
      const acc = this.accs[i]!;
      if (i === current || !acc.reached) {
        acc.unread = true;
        if (acc.reached) acc.cut = true;
      }
    }
  }

  /** Appends the start of a line (no newline in it) to the line being read. */
  private take(piece: Buffer): void {
    if (this.partialHead.length < 16) {
      this.partialHead = Buffer.concat([this.partialHead, piece.subarray(0, 16 - this.partialHead.length)]);
    }
    if (this.partialLen < this.spill) this.partial.push(piece);
    this.partialLen += piece.length;
  }

  /** The line read in pieces is complete. */
  private partialLine(): void {
    const len = this.partialLen;
    const buf = len <= this.spill ? Buffer.concat(this.partial, len) : null;
    const head = this.partialHead;
    this.partial = [];
    this.partialLen = 0;
    this.partialHead = NOTHING;
    this.line(buf, len, head);
  }

  /**
   * Passes over the current (cut) entry's output from `pos` up to the next `diff --git` line;
   * returns where reading lines resumes (the chunk's end when no header is in it).
   */
  private skip(chunk: Buffer, pos: number, base: number): number {
    // A header that a chunk boundary splits: the last bytes passed over, joined with this chunk's first.
    const tail = this.tail;
    const joined = Buffer.concat([tail, chunk.subarray(pos, pos + DIFF_HEADER.length - 1)]);
    const j = joined.indexOf(DIFF_HEADER);
    let at: number | null = null; // where the header line starts, as an offset in chunk (negative: in the tail)
    if (j >= 0) at = pos - tail.length + j + 1;
    else {
      const k = chunk.indexOf(DIFF_HEADER, pos);
      if (k >= 0) at = k + 1;
    }
    if (at === null) {
      const rest = chunk.subarray(pos);
      const keep = DIFF_HEADER.length - 1;
      this.tail = rest.length >= keep ? Buffer.from(rest.subarray(rest.length - keep)) : joined.subarray(Math.max(0, joined.length - keep));
      return chunk.length;
    }
    this.stopSkipping(base + at);
    if (at < pos) {
      // The header line began in bytes already passed over: they start the line now read.
      this.take(joined.subarray(j + 1, tail.length));
      return pos;
    }
    return at;
  }

  /** Passing over ends at `offset` in the output (the next entry's header, or the end). */
  private stopSkipping(offset: number): void {
    this.accs[this.headerOwner[this.header]!]!.omittedBytes += offset - this.skipFrom;
    this.skipping = false;
    this.tail = NOTHING;
  }

  /** One line of `len` bytes: `buf` (null when longer than `spill`: only counted), `head` its first bytes. */
  private line(buf: Buffer | null, len: number, head: Buffer): void {
    this.linesHandled++;
    PatchSplitter.linesHandled++;
    if (buf && startsWith(head, DIFF_GIT)) {
      this.header++;
      if (this.header >= this.headerOwner.length) { this.stopped = true; return; }
      const acc = this.accs[this.headerOwner[this.header]!]!;
      acc.reached = true;
      acc.inHunks = false;
      // The second half of a type change whose first half was cut: passed over too.
      if (acc.cut) this.skipping = true;
      return;
    }
    if (this.header < 0) return;
    const acc = this.accs[this.headerOwner[this.header]!]!;
    if (!acc.inHunks) {
      if (head[0] === 0x40 && head[1] === 0x40) acc.inHunks = true; // '@@'
      else {
        if (startsWith(head, BINARY_FILES) || startsWith(head, GIT_BINARY_PATCH)) acc.binary = true;
        return;
      }
    }
    const sign = head[0] === 0x2b ? 1 : head[0] === 0x2d ? -1 : 0;
    if (sign > 0) acc.added++;
    else if (sign < 0) acc.deleted++;
    if (!acc.cut && buf && acc.keptBytes + len <= this.maxBytes) {
      // Copied: a line looked at where it is would keep its whole chunk in memory.
      acc.kept.push(Buffer.from(buf));
      acc.keptBytes += len;
      if (sign > 0) acc.keptAdded++;
      else if (sign < 0) acc.keptDeleted++;
    } else {
      acc.cut = true;
      acc.omittedBytes += len;
      if (!this.countAll) this.skipping = true;
    }
  }

  /**
   * Entry `i`'s patch as kept, and what is not shown of it. `counts` are its added and deleted lines
   * from numstat: the note then says how many of them are not shown (without `countAll`, the splitter
   * itself counts only the lines it kept: the rest is passed over, not read line by line). `added`
   * and `deleted` are the splitter's own counts: of the lines kept, or with `countAll` of all.
   */
  result(i: number, counts?: readonly [number, number] | null): {
    patch: string; omitted: string | null; binary: boolean; added: number; deleted: number; unread: boolean;
  } {
    const acc = this.accs[i]!;
    const all = counts ?? (this.countAll ? [acc.added, acc.deleted] : null);
    const rest = all ? all[0] + all[1] - acc.keptAdded - acc.keptDeleted : 0;
    const lines = rest > 0 ? `${fmtCount(rest)} added or deleted ${plural(rest, 'line')}` : null;
    let omitted: string | null = null;
    if (acc.unread) {
      const why = `the diff of this ref passed ${fmtBytes(this.truncatedAt ?? 0)} ${acc.reached ? 'in this file' : 'before this file'}, and Airlock read no further`;
      omitted = acc.reached ? `${lines ?? 'the rest of the patch'} not shown: ${why}` : `diff not shown: ${why}`;
    } else if (acc.cut) {
      omitted = lines ? `${lines} (${fmtBytes(acc.omittedBytes)} of patch) not shown` : `the rest of the patch (${fmtBytes(acc.omittedBytes)}) not shown`;
    }
    return {
      patch: Buffer.concat(acc.kept).toString('utf8'),
      omitted,
      binary: acc.binary,
      added: this.countAll ? acc.added : acc.keptAdded,
      deleted: this.countAll ? acc.deleted : acc.keptDeleted,
      unread: acc.unread,
    };
  }
}
