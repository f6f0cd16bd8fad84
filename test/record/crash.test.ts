// Acceptance: the REAL CLI gateway is SIGKILLed while a git push is held for review and 50 slow requests are in
// flight. The SQLite file must open and verify, every exchange completed before the kill must be there, and a
// restarted gateway marks the held push 'interrupted' (audit event, chain intact) without ever forwarding it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { INTERRUPTED_REASON, RESTORED_EXCHANGE_ERROR, openStore } from '../../main/store';
import { sqlite } from '../../main/store/sqlite';
import type { ReviewView } from '../../main/contract/views';
import { createTestPki } from '../helpers/test-ca';
import { startUpstream, type Upstream } from '../helpers/https-upstream';
import { startGitServer, type GitServer } from '../helpers/git-server';
import { gitEnvIsolated, runGit, runGitOk } from '../helpers/git-client';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { airlock, airlockOk, spawnServe, waitFor, type ServeProcess } from './cli';

const PASS = 'git-server-pass-5Yq2';
const QUICK = 50;
const SLOW = 50;

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      /* keep closing the rest */
    }
  }
});

test('SIGKILL of `airlock serve` mid-review and mid-traffic: the record survives, the push is interrupted, nothing forwarded', async () => {
  const tmp = await makeTempDir('airlock-crash-');
  cleanups.push(() => removeDir(tmp));
  const dataDir = join(tmp, 'data');
  const pki = await createTestPki();
  const upstream: Upstream = await startUpstream({ pki });
  cleanups.push(() => upstream.close());
  const git: GitServer = await startGitServer({ pki, auth: { username: 'alice', password: PASS } });
  cleanups.push(() => git.close());
  const repo = await git.createRepo('crash', { seed: true });

  // Agent and upstream credential through the real CLI.
  const added = await airlockOk(['agent', 'add', 'bot', '--data-dir', dataDir, '--json']);
  const { name, token } = JSON.parse(added.stdout) as { name: string; token: string };
  assert.equal(name, 'bot');
  await airlockOk(['credential', 'set', `127.0.0.1:${git.port}`, '--username', 'alice', '--data-dir', dataDir], { input: PASS + '\n' });

  const serveArgs = ['--proxy-port', '0', '--console-port', '0', '--upstream-ca', pki.caPath];
  const first: ServeProcess = await spawnServe(dataDir, serveArgs);
  cleanups.push(() => first.close());
  const proxyPort = Number(new URL(first.info.proxyUrl).port);

  // A local clone (straight from the server) with one new commit, pushed through the gateway without credentials.
  const home = join(tmp, 'home');
  const work = join(tmp, 'work');
  const direct = gitEnvIsolated(home);
  await runGitOk(['-c', `http.sslCAInfo=${pki.caPath}`, 'clone', '--quiet', repo.authUrl, work], { env: direct });
  await runGitOk(['remote', 'set-url', 'origin', repo.url], { cwd: work, env: direct });
  writeFileSync(join(work, 'held.txt'), 'this push must never land\n');
  await runGitOk(['add', 'held.txt'], { cwd: work, env: direct });
  await runGitOk(['commit', '--quiet', '-m', 'held by airlock'], { cwd: work, env: direct });
  const refsBefore = await git.refs('crash');
  assert.ok(refsBefore['refs/heads/main']);

  const pushEnv = gitEnvIsolated(home, {
    HTTPS_PROXY: `http://bot:${token}@127.0.0.1:${proxyPort}`,
    GIT_SSL_CAINFO: first.info.caPath,
  });
  const push = runGit(['push', 'origin', 'HEAD:refs/heads/main'], { cwd: work, env: pushEnv, timeoutMs: 60_000 });

  // Bounded poll of the real CLI until the push is held.
  let pending: ReviewView | undefined;
  for (let i = 0; i < 20 && !pending; i++) {
    const r = await airlock(['reviews', '--status', 'pending', '--json', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    pending = (JSON.parse(r.stdout) as ReviewView[])[0];
    if (!pending) await new Promise((res) => setTimeout(res, 300));
  }
  assert.ok(pending, `no pending review; serve stderr: ${first.stderr()}`);
  assert.equal(pending.state, 'pending');
  assert.equal(pending.agent, 'bot');
  assert.equal(pending.repo, 'crash.git');

  // 50 quick requests that complete, then 50 slow ones left in flight.
  const dispatcher = new ProxyAgent({
    uri: first.info.proxyUrl,
    token: `Basic ${Buffer.from(`bot:${token}`).toString('base64')}`,
    requestTls: { ca: readFileSync(first.info.caPath, 'utf8') },
  });
  cleanups.push(() => dispatcher.destroy());
  const quick = await Promise.all(Array.from({ length: QUICK }, async (_, i) => {
    const res = await request(`${upstream.url}/hello?quick=${i}`, { dispatcher, headersTimeout: 15_000, bodyTimeout: 15_000 });
    return { status: res.statusCode, body: await res.body.text() };
  }));
  assert.ok(quick.every((q) => q.status === 200 && q.body === 'hello'));
  await new Promise((res) => setTimeout(res, 300)); // the store flushes its batch every 100 ms

  const slow = Promise.allSettled(Array.from({ length: SLOW }, async (_, i) => {
    const res = await request(`${upstream.url}/slow?ms=5000&i=${i}`, { dispatcher, headersTimeout: 15_000, bodyTimeout: 15_000 });
    return res.body.text();
  }));
  await waitFor('the slow requests to reach upstream', () =>
    upstream.requests.filter((q) => q.url.startsWith('/slow')).length >= SLOW ? true : undefined, 4_000, 20);

  first.child.kill('SIGKILL');
  const killed = await first.exited;
  assert.equal(killed.signal, 'SIGKILL');
  const slowResults = await slow;
  assert.ok(slowResults.some((s) => s.status === 'rejected'), 'slow requests were still in flight at the kill');

  // The file opens, the chain verifies, and every completed quick exchange is there.
  const store = openStore(join(dataDir, 'airlock.db'));
  try {
    const v = store.audit.verify();
    assert.equal(v.ok, true, v.message);
    const byPath = new Map(store.exchanges.list({ limit: 1000 }).map((e) => [e.path, e]));
    const missing = Array.from({ length: QUICK }, (_, i) => `/hello?quick=${i}`).filter((p) => !byPath.has(p));
    assert.deepEqual(missing, [], `${missing.length} completed exchanges lost`);
    for (let i = 0; i < QUICK; i++) {
      const e = byPath.get(`/hello?quick=${i}`)!;
      assert.equal(e.status, 200);
      assert.equal(e.agent, 'bot');
      assert.equal(e.decision?.verdict, 'allow');
    }
    assert.equal(store.reviews.get(pending.id)?.state, 'pending', 'still pending until a gateway starts again');
  } finally {
    store.close();
  }

  // The agent's git push failed: its connection died with the gateway.
  const pushed = await push;
  assert.notEqual(pushed.code, 0, `git push succeeded: ${pushed.stderr}`);

  // What a gateway killed while reading a large push leaves in its spool (a body file of up to maxPushBytes).
  const leftover = join(dataDir, 'spool', 'push-0b7e6c2a-41f5-4d0e-9a53-2f1d7c9e8b10.body');
  mkdirSync(join(dataDir, 'spool'), { recursive: true });
  writeFileSync(leftover, Buffer.alloc(4096, 1));
  // And a push's quarantine (its indexed objects: the pushed code) from an analysis the kill cut short.
  const quarantine = join(dataDir, 'spool', 'airlock-quarantine-Xy12Zq');
  mkdirSync(join(quarantine, 'objects', 'pack'), { recursive: true });
  writeFileSync(join(quarantine, 'objects', 'pack', 'pack-1.pack'), Buffer.alloc(2048, 2));
  writeFileSync(join(quarantine, 'objects', 'pack', 'pack-1.idx'), Buffer.alloc(1024, 3));

  // Restart on the same data dir: the held push is now interrupted.
  const second = await spawnServe(dataDir, serveArgs);
  cleanups.push(() => second.close());
  const listed = await airlock(['reviews', '--json', '--data-dir', dataDir]);
  assert.equal(listed.code, 0, listed.stderr);
  const after1 = (JSON.parse(listed.stdout) as ReviewView[]).find((r) => r.id === pending!.id);
  assert.equal(after1?.state, 'interrupted');
  assert.equal(after1?.reason, INTERRUPTED_REASON);
  assert.equal(after1?.decidedBy, 'system');
  assert.equal(existsSync(leftover), false, 'the spool file the killed gateway left is removed at start');
  assert.equal(existsSync(quarantine), false, 'the quarantine the killed gateway left is removed at start');
  // An agent with an idle keep-alive connection when the gateway is stopped cleanly: its session is ended.
  const dispatcher2 = new ProxyAgent({
    uri: second.info.proxyUrl,
    token: `Basic ${Buffer.from(`bot:${token}`).toString('base64')}`,
    requestTls: { ca: readFileSync(second.info.caPath, 'utf8') },
  });
  cleanups.push(() => dispatcher2.destroy());
  const again = await request(`${upstream.url}/hello?after=restart`, { dispatcher: dispatcher2 });
  assert.equal(await again.body.text(), 'hello');
  const stopped = await second.close();
  assert.equal(stopped.code, 0, second.stderr());

  const store2 = openStore(join(dataDir, 'airlock.db'));
  let recorded = 0;
  try {
    const events = store2.audit.list();
    const interrupted = events.filter((e) => e.action === 'review.interrupted');
    assert.equal(interrupted.length, 1);
    assert.equal(interrupted[0]!.subject, pending.id);
    assert.equal(interrupted[0]!.actor, 'system');
    assert.deepEqual(store2.reviews.events(pending.id).map((e) => e.state), ['pending', 'interrupted']);
    // The restart said what the kill left: which gateway, the last exchange recorded, the sessions it
    // never ended, the held push's exchange (restored from its review), the spool file removed.
    const recovered = events.filter((e) => e.action === 'record.repaired');
    assert.equal(recovered.length, 1, JSON.stringify(events.map((e) => e.action)));
    const d = recovered[0]!.details as Record<string, unknown>;
    assert.equal(recovered[0]!.subject, `pid ${first.child.pid}`);
    assert.equal(d.uncleanStop, true);
    assert.equal((d.previousGateway as { pid: number }).pid, first.child.pid);
    assert.ok((d.sessionsEnded as number) >= 1, JSON.stringify(d));
    assert.deepEqual(d.exchangesRestored, [pending.exchangeId]);
    assert.equal(d.spoolFilesRemoved, 3);
    assert.equal(d.spoolBytesRemoved, 4096 + 2048 + 1024);
    assert.match(String(d.mayBeMissing), /in flight, may be missing after exchange \d+/);
    const restored = store2.exchanges.get(pending.exchangeId);
    assert.equal(restored?.reviewId, pending.id);
    assert.equal(restored?.kind, 'git-push');
    assert.equal(restored?.path, '/crash.git/git-receive-pack');
    assert.equal(restored?.error, RESTORED_EXCHANGE_ERROR);
    // No session is left open: the killed gateway's were ended at the restart, the second's at its clean stop.
    const open = store2.sessions.list({ limit: 1000 }).filter((x) => x.endedAt === null);
    assert.deepEqual(open, []);
    recorded = store2.exchanges.count();
  } finally {
    store2.close();
  }
  const verified = await airlock(['audit', 'verify', '--data-dir', dataDir]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  // The second gateway sealed at its clean stop every row there is: the killed one's, the restored push's, its own.
  assert.match(verified.stdout, new RegExp(`^ok \\d+ events, head [0-9a-f]{64}; ${recorded} exchanges and \\d+ sessions match their seals?\\n$`));
  // And an agent that edits its traffic out of the file afterwards is caught: the held push's exchange made to look like a fetch.
  const db = new (sqlite())(join(dataDir, 'airlock.db'));
  assert.equal(db.prepare("UPDATE exchanges SET path = '/crash.git/info/refs', kind = 'git-fetch' WHERE id = ?").run(Number(pending.exchangeId)).changes, 1);
  db.close();
  const tampered = await airlock(['audit', 'verify', '--data-dir', dataDir]);
  assert.equal(tampered.code, 1, tampered.stdout + tampered.stderr);
  assert.match(tampered.stdout, /^the exchanges table does not match its seals: exchanges \S+ \(sealed at seq \d+\): a row was changed since the seal/);

  // Nothing was forwarded: the server's refs are unchanged and it never saw a receive-pack POST.
  assert.deepEqual(await git.refs('crash'), refsBefore);
  assert.deepEqual(git.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/git-receive-pack')), []);
});
