import { createHash } from 'node:crypto';
import { createWriteStream, statfsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { FindingView, RefUpdateView } from '../../contract/views';
import type { Exchange } from '../../exchange/exchange';
import {
  analysePush, buildReceivePackResult, cleanupQuarantine, decodePkts, describeReport, GitProtocolError, MAX_PKT_LEN, PushNotShowableError,
  parseReceivePackRequest, parseReceivePackResult, RECEIVE_PACK_RESULT_CONTENT_TYPE, sideBandProgress,
  type ReceivePackRequest, type RemoteCache, type SideBand,
} from '../../git';
import type { Logger } from '../../log';
import { maskString } from '../../gateway/mask-stream';
import { hiddenUnicodeFindings, opaqueFileFindings } from '../../git/hidden-unicode';
import { BodyTooLargeError, HeldBody } from '../../review/held-body';
import type { Decision, ReviewQueue } from '../../review/queue';
import type { RequestIO, Stage } from '../stage';
import { gitKindOf } from './classify';

export interface HoldDeps {
  queue: ReviewQueue;
  cache: RemoteCache;
  log: Logger;
  spoolDir: string;
  /** Where the exact bytes of every reviewed push are kept (`<sha256>.body`). */
  pushesDir: string;
  maxPushBytes: number;
  spoolThresholdBytes: number;
  /** CA bundle for git talking to the real upstream (system roots + --upstream-ca). */
  upstreamCaFile: string;
  /** Free space the spool's disk must keep; below it pushes are refused (default: no check). */
  pushMinFreeBytes?: number;
  /** Pushes one agent may have held or being analysed at once (default 8); more are refused (429). */
  maxPushesPerAgent?: number;
  /** Interval of "still waiting" progress lines while a push is held. */
  keepaliveMs?: number;
  /** Called with timings when a review is ready (for logs and the benchmark). */
  onReviewReady?: (t: { reviewId: string; msFromReceipt: number; analysisMs: number; cacheMs: number }) => void;
}

/** A pack with no objects: lets the command parser run on a spooled body's prefix. */
const EMPTY_PACK = (() => {
  const head = Buffer.from('5041434b0000000200000000', 'hex');
  return Buffer.concat([head, createHash('sha1').update(head).digest()]);
})();

/**
 * Bytes of a spooled push read for its command list and push options (at least this, and at least the
 * spool threshold, so that commands Airlock parses in a body kept in memory are parsed spooled too):
 * some 147 000 ref updates of ~114 bytes. Past it the push is refused, saying so.
 */
export const MAX_COMMAND_BYTES = 16 * 1024 * 1024;

/** The command list (and push options) of a spooled push is longer than Airlock reads. */
export class CommandsTooLongError extends Error {}

/**
 * Where the pkt-line section starting at `pos` ends (after its flush-pkt); null when `buf` ends first.
 * A malformed length is reported by decodePkts, as for a body kept in memory.
 */
function sectionEnd(buf: Buffer, pos: number): number | null {
  const start = pos;
  while (pos + 4 <= buf.length) {
    const hex = buf.toString('latin1', pos, pos + 4);
    const len = /^[0-9a-fA-F]{4}$/.test(hex) ? parseInt(hex, 16) : -1;
    if (len === 0) return pos + 4;
    if (len === 1 || len === 2) { pos += 4; continue; }
    if (len < 4 || len > MAX_PKT_LEN) {
      decodePkts(buf, start); // throws: the same error as for the whole body
      throw new GitProtocolError(`Bad pkt-line length ${JSON.stringify(hex)} at byte ${pos}.`);
    }
    pos += len;
  }
  return null;
}

/**
 * Parses the command section; for spooled bodies only the prefix up to the pack is read (as far as
 * the flush-pkts that end the commands and push options, at most `maxCommandBytes`) and the pack is
 * checked by index-pack.
 */
export async function parsePush(body: HeldBody, maxCommandBytes = MAX_COMMAND_BYTES): Promise<ReceivePackRequest> {
  const whole = body.inMemory;
  if (whole) return parseReceivePackRequest(whole);
  // Usually a few hundred bytes; a push of thousands of refs is megabytes: read in growing prefixes.
  for (let want = Math.min(1024 * 1024, maxCommandBytes); ; want = Math.min(want * 2, maxCommandBytes)) {
    const prefix = await body.prefix(want);
    // All of the body (commands alone past the spool threshold): parsed as if kept in memory.
    if (prefix.length >= body.size) return parseReceivePackRequest(prefix);
    let end = sectionEnd(prefix, 0);
    // Past the commands' flush-pkt, anything but a pack is the push options section.
    if (end !== null && end + 4 <= prefix.length && prefix.toString('latin1', end, end + 4) !== 'PACK') end = sectionEnd(prefix, end);
    if (end !== null && end + 4 <= prefix.length) {
      if (prefix.toString('latin1', end, end + 4) !== 'PACK') throw new GitProtocolError('The push has no pack where one was expected.');
      const parsed = parseReceivePackRequest(Buffer.concat([prefix.subarray(0, end), EMPTY_PACK]));
      return { ...parsed, packOffset: end, packObjectCount: null };
    }
    if (want >= maxCommandBytes) {
      throw new CommandsTooLongError(`its ref-update commands and push options take more than ${fmtMiB(maxCommandBytes)}, more than Airlock reads; push fewer refs at a time`);
    }
  }
}

/** Bytes of upstream's answer to an approved push kept to read its report-status from. */
const REPORT_COPY_BYTES = 1024 * 1024;

function gitError(io: RequestIO, status: number, message: string): 'handled' {
  io.respond(status, { 'content-type': 'text/plain; charset=utf-8', 'x-airlock-error': 'push-rejected' }, `Airlock rejected this push: ${message}\n`);
  return 'handled';
}

/** Free bytes on the disk holding `dir` (or its nearest existing parent); null when it cannot be told. */
function freeBytes(dir: string): number | null {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = statfsSync(d);
      return s.bavail * s.bsize;
    } catch {
      if (dirname(d) === d) return null;
    }
  }
}

function fmtMiB(n: number): string {
  return `${Math.floor(n / (1024 * 1024))} MiB`;
}

/** Drains the rest of an oversize push, then rejects every ref it names as git would show it. */
function refuseTooLarge(io: RequestIO, e: BodyTooLargeError): Promise<'handled'> {
  return refuseUnread(io, e.prefix, 'push too large', `${e.message} (maxPushBytes)`, 413);
}

/**
 * Drains what is left of a push nobody will review (keeping the first 64 KiB, where its commands are),
 * then rejects every ref it names with `message`, as git shows it; without readable commands, a plain
 * HTTP `status` with the message.
 */
async function refuseUnread(io: RequestIO, prefix: Buffer, unpack: string, message: string, status: number): Promise<'handled'> {
  let head = prefix;
  if (!io.body.readableEnded) {
    // The rest of the request is read (and dropped) so that the agent can read the answer.
    io.body.on('data', (c: Buffer) => { if (head.length < 65536) head = Buffer.concat([head, c.subarray(0, 65536 - head.length)]); });
    io.body.resume();
    await new Promise<void>((r) => {
      io.body.once('end', r);
      io.body.once('close', r);
      io.onClientGone(r);
    });
  }
  let parsed: ReceivePackRequest | null = null;
  try {
    const { end } = decodePkts(head, 0);
    parsed = parseReceivePackRequest(Buffer.concat([head.subarray(0, end), EMPTY_PACK]));
  } catch {
    parsed = null;
  }
  if (!parsed) return gitError(io, status, message);
  const reason = `Airlock rejected this push: ${message}`;
  const result = buildReceivePackResult({ unpackOk: unpack, refs: parsed.commands.map((c) => ({ ref: c.ref, ok: false, reason })), sideBand: parsed.sideBand });
  io.respond(200, { 'content-type': RECEIVE_PACK_RESULT_CONTENT_TYPE }, result);
  return 'handled';
}

function reasonFor(d: Decision): string {
  if (d.state === 'denied') return `denied by ${d.by}: ${d.reason}`;
  if (d.state === 'expired') return `expired: ${d.reason}`;
  if (d.state === 'interrupted') return `interrupted: ${d.reason}`;
  return 'approved';
}

function summarise(refs: RefUpdateView[], pushOptions: string[]): string {
  const parts = refs.map((r) => {
    const files = r.files.length;
    const add = r.files.reduce((a, f) => a + f.additions, 0);
    const del = r.files.reduce((a, f) => a + f.deletions, 0);
    return `${r.change} ${r.ref}` + (r.change === 'delete' ? '' : ` (${r.commits.length} commit${r.commits.length === 1 ? '' : 's'}, ${files} file${files === 1 ? '' : 's'}, +${add} −${del}${r.omitted ? '; not all shown' : ''})`);
  });
  return parts.join('; ') + (pushOptions.length > 0 ? `; push options: ${pushOptions.join(', ')}` : '');
}

/**
 * Push options (`git push -o …`) go to the server with the push, and servers act on them: GitLab's
 * `merge_request.create`, `merge_request.merge_when_pipeline_succeeds`, `ci.skip`. The reviewer sees them.
 */
function pushOptionFindings(pushOptions: string[]): FindingView[] {
  if (pushOptions.length === 0) return [];
  return [{
    severity: 'warning',
    rule: 'push-options',
    message: `This push sends push options the server may act on (GitLab: merge requests, auto-merge, skipping CI): ${pushOptions.map((o) => JSON.stringify(o)).join(', ')}.`,
    path: null,
    line: null,
  }];
}

/**
 * Step 3 for git pushes: hold the receive-pack POST, read the whole body, show
 * the reviewer what would land, and forward the exact reviewed bytes only after
 * approval. A denial or expiry is answered as a git rejection carrying the reason.
 */
export function holdStage(deps: HoldDeps): Stage {
  // Pushes of one agent being read, analysed or waiting for a decision. Each can spool up to
  // maxPushBytes and run git: a careless or hostile agent must not fill the disk or the machine.
  const inFlight = new Map<string, number>();
  const limit = deps.maxPushesPerAgent ?? 8;
  return {
    name: 'hold',
    async onRequest(ex, io) {
      if (ex.decision?.verdict !== 'review' || gitKindOf(ex) !== 'git-push') return;
      const agent = ex.agent.name;
      const n = inFlight.get(agent) ?? 0;
      if (n >= limit) {
        ex.error = `${agent} already has ${limit} pushes held`;
        return refuseUnread(io, Buffer.alloc(0), 'too many pushes held', `agent ${agent} already has ${limit} pushes held for review or being analysed; a person decides those first (maxPushesPerAgent)`, 429);
      }
      const free = freeBytes(deps.spoolDir);
      if (deps.pushMinFreeBytes && free !== null && free < deps.pushMinFreeBytes) {
        ex.error = 'disk nearly full';
        return refuseUnread(io, Buffer.alloc(0), 'disk nearly full', `the disk that holds Airlock's data has ${fmtMiB(free)} free, under pushMinFreeBytes (${fmtMiB(deps.pushMinFreeBytes)}); pushes wait until space is freed`, 507);
      }
      inFlight.set(agent, n + 1);
      try {
        return await holdPush(ex, io, deps);
      } finally {
        const left = (inFlight.get(agent) ?? 1) - 1;
        if (left > 0) inFlight.set(agent, left);
        else inFlight.delete(agent);
      }
    },
  };
}

async function holdPush(ex: Exchange, io: RequestIO, deps: HoldDeps): Promise<'handled'> {
  const receivedAt = Date.now();
  let body: HeldBody;
  try {
    body = await HeldBody.read(io.body, { maxBytes: deps.maxPushBytes, spoolThreshold: deps.spoolThresholdBytes, spoolDir: deps.spoolDir });
  } catch (e) {
    if (e instanceof BodyTooLargeError) return refuseTooLarge(io, e);
    return gitError(io, 400, `the push body could not be read (${(e as Error).message})`);
  }
  try {
    return await holdBody(ex, io, deps, body, receivedAt);
  } finally {
    await body.dispose();
  }
}

async function holdBody(ex: Exchange, io: RequestIO, deps: HoldDeps, raw: HeldBody, receivedAt: number): Promise<'handled'> {
  // git's 4-byte probe before a large chunked push: no commands, no review.
  if (raw.size === 4 && raw.inMemory?.toString('latin1') === '0000') {
    await io.forwardWith(raw.inMemory, 4);
    return 'handled';
  }
  const encoding = String(ex.requestHeaders['content-encoding'] ?? '').toLowerCase();
  let body = raw;
  let decodedTemp: HeldBody | null = null;
  if (encoding === 'gzip' || encoding === 'x-gzip') {
    if (!raw.inMemory) return gitError(io, 413, 'gzip-encoded pushes larger than the spool threshold are not supported');
    // Inflated as a stream on the thread pool and spooled as it comes, bounded by maxPushBytes: a small
    // body that inflates to gigabytes (a gzip bomb) neither blocks the event loop nor fills memory.
    try {
      decodedTemp = await HeldBody.read(Readable.from([raw.inMemory]).pipe(createGunzip()), {
        maxBytes: deps.maxPushBytes, spoolThreshold: deps.spoolThresholdBytes, spoolDir: deps.spoolDir });
    } catch (e) {
      if (e instanceof BodyTooLargeError) return refuseTooLarge(io, e);
      return gitError(io, 400, `the gzip-encoded push body is corrupt (${(e as Error).message})`);
    }
    body = decodedTemp;
  } else if (encoding && encoding !== 'identity') {
    return gitError(io, 415, `unsupported Content-Encoding "${encoding}"`);
  }
  try {
    let parsed: ReceivePackRequest;
    try {
      parsed = await parsePush(body, Math.max(MAX_COMMAND_BYTES, deps.spoolThresholdBytes));
    } catch (e) {
      if (e instanceof GitProtocolError) return gitError(io, 400, e.message);
      if (e instanceof CommandsTooLongError) return gitError(io, 413, e.message);
      throw e;
    }
    return await review(ex, io, deps, raw, body, parsed, receivedAt);
  } finally {
    await decodedTemp?.dispose();
  }
}

async function review(ex: Exchange, io: RequestIO, deps: HoldDeps, raw: HeldBody, body: HeldBody,
  parsed: ReceivePackRequest, receivedAt: number): Promise<'handled'> {
  const sideBand: SideBand = parsed.sideBand;
  const stream = sideBand
    ? io.respondStream(200, { 'content-type': RECEIVE_PACK_RESULT_CONTENT_TYPE, 'cache-control': 'no-cache' })
    : null;
  const progress = (msg: string) => stream?.write(sideBandProgress(`Airlock: ${msg}`, sideBand));
  /** Rejects every ref of the push with `reason`, as git shows it, and ends the answer. */
  const rejectEvery = (reason: string, unpack: true | string = true): 'handled' => {
    const result = buildReceivePackResult({ unpackOk: unpack, refs: parsed.commands.map((c) => ({ ref: c.ref, ok: false, reason })), sideBand });
    if (stream) stream.end(result);
    else io.respond(200, { 'content-type': RECEIVE_PACK_RESULT_CONTENT_TYPE }, result);
    return 'handled';
  };
  // Watch for the agent leaving from now on: a push whose agent left is never forwarded.
  let clientGone = false;
  let heldId: string | null = null;
  io.onClientGone(() => {
    clientGone = true;
    if (heldId) deps.queue.interrupt(heldId, 'the agent disconnected while the push was held');
  });
  progress('push received, analysing…');

  // Analyse: resolve the (possibly thin) pack against a cache of the upstream repo.
  const remoteUrl = `${ex.scheme}://${ex.authority}${encodeURI(ex.repoPath ?? '')}`;
  const cred = io.credential;
  let refs: RefUpdateView[];
  let quarantine: string | null = null;
  let packFile: string | null = null;
  const t0 = Date.now();
  let cacheMs = 0;
  try {
    // The cache is brought up to date with upstream for every push: a cache that is behind (upstream
    // rewound a branch, another client pushed) would show a republished commit as nothing new. The
    // fetch is incremental, and one already running (the background refresh after a forwarded push) is
    // joined. Upstream out of reach: the push is refused below (it could not be shown as it would land).
    const cacheDir = await deps.cache.ensure(remoteUrl, { extraHeader: cred ? `Authorization: ${cred.header}` : undefined, caFile: deps.upstreamCaFile })
      .catch((e: Error) => {
        throw new PushNotShowableError(`Airlock could not fetch ${remoteUrl} to compare this push with (${e.message.split('\n')[0]})`);
      });
    cacheMs = Date.now() - t0;
    if (parsed.hasPack) {
      await mkdir(deps.spoolDir, { recursive: true, mode: 0o700 });
      packFile = join(deps.spoolDir, `pack-${randomUUID()}.pack`);
      await pipeline(body.stream(parsed.packOffset), createWriteStream(packFile, { mode: 0o600 }));
    }
    const analysis = await analysePush({ cacheDir, packFile, commands: parsed.commands, quarantineParent: deps.spoolDir });
    quarantine = analysis.quarantineDir;
    refs = analysis.refs;
  } catch (e) {
    // Fail closed: a push whose pack git cannot index, or whose effect Airlock cannot show in full
    // (objects it names are nowhere to be seen, upstream out of reach, the analysis failed), is refused
    // with the reason. A review that shows less than what would land must never be approvable.
    const msg = (e as Error).message.split('\n')[0]!;
    const unpack = e instanceof PushNotShowableError ? 'ok' : /index-pack|pack/i.test(msg) ? 'airlock could not read the pack' : 'ok';
    const reason = e instanceof PushNotShowableError ? `Airlock refused this push: ${msg}; nothing was forwarded`
      : unpack !== 'ok' ? `Airlock rejected this push: ${msg}`
        : `Airlock refused this push: it could not compute what the push would land (${msg}); nothing was forwarded`;
    deps.log.warn('push refused: not showable', { repo: remoteUrl, reason: msg });
    ex.error = reason;
    if (packFile) await rm(packFile, { force: true });
    return rejectEvery(reason, unpack === 'ok' ? true : unpack);
  } finally {
    if (packFile) await rm(packFile, { force: true });
    if (quarantine) await cleanupQuarantine(quarantine);
  }
  const analysisMs = Date.now() - t0;

  // The exact bytes under review are kept for the record, referenced by the review (never copied into SQLite).
  let bodyPath: string | null = null;
  try {
    bodyPath = await raw.keep(deps.pushesDir);
  } catch (e) {
    deps.log.warn('could not keep the held push body', { error: (e as Error).message });
  }
  let created: ReturnType<ReviewQueue['create']>;
  try {
    created = deps.queue.create({
    exchangeId: ex.id,
    agent: ex.agent.name,
    kind: ex.kind,
    host: ex.authority,
    repo: (ex.repoPath ?? '').replace(/^\/+/, ''),
    bodySha256: raw.sha256,
    bodyBytes: raw.size,
    bodyPath,
    summary: summarise(refs, parsed.pushOptions),
    refs,
    findings: [...hiddenUnicodeFindings(refs), ...opaqueFileFindings(refs), ...pushOptionFindings(parsed.pushOptions)],
    });
  } catch (e) {
    // No review written, no review to approve: the push is refused with the reason, as git shows it.
    const reason = `Airlock could not record the review of this push (${(e as Error).message.split('\n')[0]}); nothing was forwarded`;
    deps.log.error('push refused: its review could not be recorded', { error: (e as Error).message });
    ex.error = reason;
    return rejectEvery(reason);
  }
  const { review: rec, decision } = created;
  ex.reviewId = rec.id;
  heldId = rec.id;
  if (clientGone) deps.queue.interrupt(rec.id, 'the agent disconnected while the push was analysed');
  deps.onReviewReady?.({ reviewId: rec.id, msFromReceipt: Date.now() - receivedAt, analysisMs, cacheMs });
  deps.log.info('push held for review', { review: rec.id, agent: ex.agent.name, repo: remoteUrl, bytes: raw.size, readyMs: Date.now() - receivedAt });
  progress(`push held for review #${rec.id} (${refs.map((r) => r.ref).join(', ')})`);
  // No command here: an agent reads this line, and a careless one would run it (approve) itself.
  progress('a person reviews it in Airlock; this push waits for their decision');
  const keepalive = stream ? setInterval(() => progress(`still waiting for review #${rec.id}…`), deps.keepaliveMs ?? 30_000) : null;
  let d: Decision;
  try {
    d = await decision;
  } finally {
    if (keepalive) clearInterval(keepalive);
  }

  if (d.state !== 'approved') {
    return rejectEvery(reasonFor(d));
  }

  // Approved: forward exactly the reviewed bytes (hash re-checked), with Airlock's credential.
  progress(`review #${rec.id} approved by ${d.by}; forwarding to ${ex.authority}`);
  let verified;
  try {
    verified = await raw.verified();
  } catch (e) {
    deps.queue.forwarded(rec.id, 0, 'not forwarded: body changed', 'not forwarded: the body changed after it was reviewed');
    return rejectEvery((e as Error).message);
  }
  // Upstream moved: refresh the cache in the background so the next push's review is ready sooner.
  const refreshCache = () => {
    deps.cache.ensure(remoteUrl, { extraHeader: cred ? `Authorization: ${cred.header}` : undefined, caFile: deps.upstreamCaFile })
      .catch((e: Error) => deps.log.debug('background cache refresh failed', { repo: remoteUrl, error: e.message }));
  };
  if (!stream) {
    await io.forwardWith(verified.body, verified.length);
    deps.queue.forwarded(rec.id, ex.status ?? 0, 'relayed');
    if (ex.status === 200) refreshCache();
    return 'handled';
  }
  try {
    const upRes = await io.fetchUpstream(verified.body, verified.length);
    const status = upRes.statusCode ?? 502;
    if (status === 200) {
      // Upstream's side-band stream continues ours: packets are self-delimiting. A copy (bounded: a
      // report is small, progress may not be) is read for what upstream did with each ref: an HTTP
      // 200 can refuse them all (a branch that moved while the push was held).
      const copy: Buffer[] = [];
      let copied = 0;
      for await (const c of upRes as AsyncIterable<Buffer>) {
        stream.write(c);
        if (copied < REPORT_COPY_BYTES) {
          copy.push(c.subarray(0, REPORT_COPY_BYTES - copied));
          copied += Math.min(c.length, REPORT_COPY_BYTES - copied);
        }
      }
      stream.end();
      const report = parseReceivePackResult(Buffer.concat(copy), sideBand);
      const result = report ? describeReport(report) : copied >= REPORT_COPY_BYTES ? 'not known: upstream\'s answer was too long to read' : null;
      deps.queue.forwarded(rec.id, status, result === 'ok' ? 'ok' : 'relayed', result);
      refreshCache();
    } else {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of upRes as AsyncIterable<Buffer>) {
        if (n < 2048) chunks.push(c);
        n += c.length;
      }
      // The upstream's words go into the agent's git output and the audit log: never Airlock's credential
      // (an error page may quote the Authorization it got), and never bytes of an encoded body.
      const encoded = !['', 'identity'].includes(String(upRes.headers['content-encoding'] ?? '').trim().toLowerCase());
      const said = encoded ? '' : Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim();
      const text = (cred ? maskString(said, cred.secrets) : said).slice(0, 200);
      const reason = `upstream answered HTTP ${status}${text ? `: ${text}` : ''}`;
      rejectEvery(reason);
      deps.queue.forwarded(rec.id, status, reason, `not taken: ${reason}`);
    }
  } catch (e) {
    const reason = (e as Error).message;
    rejectEvery(reason);
    deps.queue.forwarded(rec.id, (e as { status?: number }).status ?? 502, reason, `not taken: ${reason}`);
  }
  return 'handled';
}
