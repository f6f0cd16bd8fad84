// A held git push in the record, end to end: a real in-process Airlock, a real git smart-HTTP server, real
// `git push`es approved and denied through the service, then the record is read back (store and the real CLI).
// The exchange must say what the agent sent (the held bytes: the review's size and SHA-256, kept with the review),
// what Airlock answered (its own report-status: status, headers and body), and how the review ended.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { AIRLOCK_BIN, cleanCliEnv } from '../helpers/airlock';
import { join } from 'node:path';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import { createLogger } from '../../main/log';
import { startAirlock, type RunningAirlock } from '../../main/service';
import type { ExchangeRecord, ReviewRecord } from '../../main/store';
import type { HarEntry } from '../../main/store/har';
import { createTestPki, gitEnvIsolated, makeTempDir, removeDir, runGit, startGitServer, type GitServer } from '../helpers/index';
import { airlock, waitFor } from './cli';

const AGENT = 'held-bot';
let server: GitServer;
let running: RunningAirlock;
let home: string;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let work: string;

before(async () => {
  const pki = await createTestPki();
  server = await startGitServer({ pki, auth: { username: 'alice', password: 'upstream-secret-7' } });
  dataDir = await makeTempDir('airlock-held-rec-');
  home = await makeTempDir('airlock-held-home-');
  running = await startAirlock({ dataDir, proxyPort: 0, consolePort: 0, upstreamCa: [pki.caPath], log: createLogger('error'), bodyCaptureBytes: 64 * 1024 });
  await running.service.credentials.set(new URL(server.url).host, 'upstream-secret-7', { username: 'alice' });
  const token = newAgentToken();
  running.service.store.agents.add(AGENT, ['ai-coding']);
  running.service.store.agents.addToken(AGENT, hashToken(token), 'test', null);
  env = {
    ...gitEnvIsolated(home),
    HTTPS_PROXY: `http://${AGENT}:${token}@127.0.0.1:${new URL(running.proxyUrl).port}`,
    GIT_SSL_CAINFO: running.caPath,
  };
  const repo = await server.createRepo('held', { seed: true });
  work = join(home, 'w');
  const c = await runGit(['clone', '-q', repo.url, work], { env });
  assert.equal(c.code, 0, c.stderr);
});

after(async () => {
  await running?.service.close();
  await server?.close();
  await removeDir(home);
  await removeDir(dataDir);
});

/** Commits one file and pushes it to `branch`; the held review is approved or denied through the service. */
async function pushAndDecide(branch: string, decide: 'approve' | 'deny'): Promise<{ code: number; stderr: string; review: ReviewRecord; ex: ExchangeRecord }> {
  writeFileSync(join(work, `${branch}.txt`), `a change for ${branch}\n`);
  assert.equal((await runGit(['add', '.'], { cwd: work, env })).code, 0);
  assert.equal((await runGit(['commit', '-q', '-m', `agent: ${branch}`], { cwd: work, env })).code, 0);
  const push = runGit(['push', 'origin', `HEAD:refs/heads/${branch}`], { cwd: work, env });
  const store = running.service.store;
  const pending = await waitFor('the push to be held', () =>
    store.reviews.list({ state: 'pending' }).find((r) => r.summary.includes(`refs/heads/${branch}`)), 30_000, 50);
  if (decide === 'approve') await running.service.approveReview({ id: pending.id });
  else await running.service.denyReview({ id: pending.id, reason: 'not this one' });
  const r = await push;
  const ex = await waitFor('the push exchange to be recorded', () => {
    const x = store.exchanges.get(pending.exchangeId);
    return x?.endedAt ? x : undefined;
  }, 10_000);
  return { code: r.code, stderr: r.stderr, review: store.reviews.get(pending.id)!, ex };
}

function exchangeLine(table: string, id: string): string {
  const line = table.split('\n').find((l) => l.trimStart().startsWith(`${id} `));
  assert.ok(line, `no row for exchange ${id} in:\n${table}`);
  return line;
}

test('a denied push: the record keeps what the agent sent (with the review) and what Airlock answered', async () => {
  const { code, stderr, review, ex } = await pushAndDecide('denied-one', 'deny');
  assert.notEqual(code, 0, 'the denied push failed');
  assert.match(stderr, /denied by/);
  assert.equal(review.state, 'denied');

  // What the agent sent: the held bytes, referenced by the review (not copied into the record).
  assert.equal(ex.reviewId, review.id);
  assert.ok(review.bodyBytes > 0);
  assert.equal(ex.requestBytes, review.bodyBytes);
  if (ex.requestHeaders['content-length'] !== undefined) assert.equal(String(ex.requestBytes), ex.requestHeaders['content-length']);
  assert.equal(ex.requestBodySha256, review.bodySha256);
  assert.equal(ex.requestBody, null);

  // What the agent got: Airlock's own report-status (HTTP 200, refs rejected), kept like any response.
  assert.equal(ex.status, 200);
  assert.ok(ex.responseHeaders, 'Airlock answered: its headers are recorded');
  assert.equal(ex.responseHeaders['content-type'], 'application/x-git-receive-pack-result');
  assert.ok(ex.responseBody && ex.responseBody.length > 0, 'Airlock answered: its body is recorded');
  assert.equal(ex.responseBody.length, ex.responseBytes);
  assert.match(ex.responseBody.toString('latin1'), /denied by .*not this one/);
  // How it ended: not forwarded, the review denied.
  assert.match(ex.error ?? '', new RegExp(`^review #${review.id} denied by .*not this one`));

  const detail = await airlock(['exchange', ex.id, '--data-dir', dataDir]);
  assert.equal(detail.code, 0, detail.stderr);
  assert.match(detail.stdout, new RegExp(`> request body: ${review.bodyBytes} bytes, kept with review #${review.id} \\(airlock show ${review.id}; .*pushes/${review.bodySha256}\\.body\\)`));
  assert.doesNotMatch(detail.stdout, /\(no response\)/);
  assert.doesNotMatch(detail.stdout, /capture off/);
  assert.match(detail.stdout, /content-type: application\/x-git-receive-pack-result/);

  const list = await airlock(['exchanges', '--data-dir', dataDir]);
  if (process.env.SHOW_RECORD) console.log(detail.stdout + list.stdout);
  assert.equal(list.code, 0, list.stderr);
  assert.match(exchangeLine(list.stdout, ex.id), new RegExp(`review #${review.id} denied`));
});

test('an approved push: the record keeps the held bytes with the review, and the answer the agent got (counted once)', async () => {
  const { code, stderr, review, ex } = await pushAndDecide('approved-one', 'approve');
  assert.equal(code, 0, stderr);
  assert.equal(review.state, 'approved');
  assert.equal(review.upstreamStatus, 200);

  assert.equal(ex.reviewId, review.id);
  assert.equal(ex.requestBytes, review.bodyBytes);
  assert.equal(ex.requestBodySha256, review.bodySha256);
  assert.equal(ex.requestBodyComplete, true);
  assert.equal(ex.error, null);

  // Airlock's side-band stream (its progress lines, then upstream's report inside it): the headers and
  // status the agent got are Airlock's, and every byte is counted once.
  assert.equal(ex.status, 200);
  assert.equal(ex.responseHeaders?.['content-type'], 'application/x-git-receive-pack-result');
  assert.ok(ex.responseBody);
  assert.equal(ex.responseBody.length, ex.responseBytes, 'each response byte counted once');
  assert.match(ex.responseBody.toString('latin1'), new RegExp(`push held for review #${review.id}`));
  assert.match(ex.responseBody.toString('latin1'), /ok refs\/heads\/approved-one/);

  const detail = await airlock(['exchange', ex.id, '--data-dir', dataDir]);
  assert.equal(detail.code, 0, detail.stderr);
  assert.match(detail.stdout, new RegExp(`> request body: ${review.bodyBytes} bytes, kept with review #${review.id} \\(airlock show ${review.id}; .*pushes/${review.bodySha256}\\.body\\)`));
  assert.doesNotMatch(detail.stdout, /capture off/);

  const json = await airlock(['exchange', ex.id, '--json', '--data-dir', dataDir]);
  const j = JSON.parse(json.stdout) as { requestBodySha256: string | null };
  assert.equal(j.requestBodySha256, review.bodySha256);
  // --body request writes the exact bytes reviewed, from the file kept with the review.
  const raw = spawnSync(process.execPath, [AIRLOCK_BIN, 'exchange', ex.id, '--body', 'request', '--data-dir', dataDir], { env: cleanCliEnv(), timeout: 30_000 });
  assert.equal(raw.status, 0, raw.stderr.toString());
  assert.equal(raw.stdout.length, review.bodyBytes);
  assert.equal(createHash('sha256').update(raw.stdout).digest('hex'), review.bodySha256);

  const list = await airlock(['exchanges', '--data-dir', dataDir]);
  if (process.env.SHOW_RECORD) console.log(detail.stdout + list.stdout);
  assert.match(exchangeLine(list.stdout, ex.id), new RegExp(`review #${review.id} approved`));
});

test('the HAR export of a push\'s session: the held bytes named by their review, the wait for it as "blocked"', async () => {
  const { review, ex } = await pushAndDecide('har-one', 'deny');
  const file = join(home, 'push.har');
  const r = await airlock(['exchanges', 'export', '--format', 'har', '--session', ex.sessionId!, '--out', file, '--data-dir', dataDir]);
  assert.equal(r.code, 0, r.stderr);
  const har = JSON.parse(readFileSync(file, 'utf8')) as { log: { entries: HarEntry[] } };
  const e = har.log.entries.find((x) => x._airlock.id === ex.id);
  assert.ok(e, 'the push is in its session\'s HAR');
  assert.equal(e.request.method, 'POST');
  assert.match(e.request.url, /\/git-receive-pack$/);
  assert.equal(e.request.bodySize, review.bodyBytes);
  assert.equal(e.request.postData?.text, '');
  assert.equal(e.request.postData?.comment, `${review.bodyBytes} bytes (SHA-256 ${review.bodySha256}), kept with review #${review.id}: airlock exchange ${ex.id} --body request`);
  assert.equal(e._airlock.kind, 'git-push');
  assert.equal(e._airlock.reviewId, review.id);
  assert.equal(e._airlock.reviewOutcome, 'denied');
  assert.match(e.comment, new RegExp(`review #${review.id} denied`));
  // Airlock answered the push itself (a report-status git prints): no upstream phases, the rest is the hold.
  assert.equal(e.timings.connect, -1);
  assert.ok(e.timings.blocked >= 0 && e.timings.receive === 0, JSON.stringify(e.timings));
  assert.match(Buffer.from(e.response.content.text!, e.response.content.encoding === 'base64' ? 'base64' : 'utf8').toString('latin1'), /denied/);
});
