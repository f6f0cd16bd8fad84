// The Activity view of held pushes, end to end: real `git push`es held by the real gateway, one approved and one
// denied through the service, then the real web console in Chromium (light and dark). Each push's row says how
// its review ended, and its detail says where the bytes the agent sent are kept and what Airlock answered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureBuilt, launchChromium, RENDERER_DIR } from '../helpers/browser';
import { createTestPki, gitEnvIsolated, makeTempDir, removeDir, runGit, startGitServer, type GitServer } from '../helpers/index';
import { startAirlock, type RunningAirlock } from '../../main/service';
import { createLogger } from '../../main/log';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import type { ReviewRecord } from '../../main/store';

const SHOTS = process.env.AIRLOCK_SHOTS ?? join(tmpdir(), 'airlock-held-activity');

let server: GitServer;
let running: RunningAirlock;
let browser: Browser;
let home: string;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let work: string;
const reviews: Record<'approved' | 'denied', ReviewRecord | null> = { approved: null, denied: null };

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function pushAndDecide(branch: string, decide: 'approve' | 'deny'): Promise<ReviewRecord> {
  writeFileSync(join(work, `${branch}.txt`), `a change for ${branch}\n`);
  await runGit(['add', '.'], { cwd: work, env });
  await runGit(['commit', '-q', '-m', `agent: ${branch}`], { cwd: work, env });
  const push = runGit(['push', 'origin', `HEAD:refs/heads/${branch}`], { cwd: work, env });
  const store = running.service.store;
  const pending = await waitFor('the push to be held', () =>
    store.reviews.list({ state: 'pending' }).find((r) => r.summary.includes(`refs/heads/${branch}`)), 30_000);
  if (decide === 'approve') await running.service.approveReview({ id: pending.id });
  else await running.service.denyReview({ id: pending.id, reason: 'not now' });
  await push;
  await waitFor('the exchange', () => (store.exchanges.get(pending.exchangeId)?.endedAt ? true : undefined), 10_000);
  return store.reviews.get(pending.id)!;
}

before(async () => {
  ensureBuilt();
  mkdirSync(SHOTS, { recursive: true });
  const pki = await createTestPki();
  server = await startGitServer({ pki, auth: { username: 'alice', password: 'upstream-secret-3' } });
  dataDir = await makeTempDir('airlock-held-ui-');
  home = await makeTempDir('airlock-held-ui-home-');
  running = await startAirlock({ dataDir, proxyPort: 0, consolePort: 0, upstreamCa: [pki.caPath], log: createLogger('error'), staticDir: RENDERER_DIR });
  await running.service.credentials.set(new URL(server.url).host, 'upstream-secret-3', { username: 'alice' });
  const token = newAgentToken();
  running.service.store.agents.add('ui-agent', ['ai-coding']);
  running.service.store.agents.addToken('ui-agent', hashToken(token), 'test', null);
  env = {
    ...gitEnvIsolated(home),
    HTTPS_PROXY: `http://ui-agent:${token}@127.0.0.1:${new URL(running.proxyUrl).port}`,
    GIT_SSL_CAINFO: running.caPath,
  };
  const repo = await server.createRepo('act', { seed: true });
  work = join(home, 'w');
  assert.equal((await runGit(['clone', '-q', repo.url, work], { env })).code, 0);
  reviews.approved = await pushAndDecide('approved-push', 'approve');
  reviews.denied = await pushAndDecide('denied-push', 'deny');
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await running?.service.close();
  await server?.close();
  await removeDir(home);
  await removeDir(dataDir);
});

async function openActivity(colorScheme: 'light' | 'dark'): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 700 }, colorScheme });
  const page = await ctx.newPage();
  await page.goto(`${running.consoleUrl}/#token=${running.adminToken}`);
  await page.goto(`${running.consoleUrl}/#/activity`);
  await page.locator('.grid-body .grid-row', { hasText: 'git-receive-pack' }).first().waitFor({ timeout: 10_000 });
  return page;
}

for (const scheme of ['light', 'dark'] as const) {
  test(`Activity (${scheme}): a held push's row says how its review ended; its detail says where the bytes are kept`, async () => {
    const page = await openActivity(scheme);
    await page.screenshot({ path: join(SHOTS, `activity-${scheme}.png`) });
    const approved = reviews.approved!;
    const denied = reviews.denied!;
    const rowOf = (r: ReviewRecord) => page.locator('.grid-body .grid-row', { has: page.locator(`a[href="#/reviews/${r.id}"]`) });
    const approvedText = (await rowOf(approved).innerText()).replace(/\s+/g, ' ');
    const deniedText = (await rowOf(denied).innerText()).replace(/\s+/g, ' ');

    await rowOf(denied).locator('[role="cell"]').first().click();
    const detail = page.getByRole('region', { name: 'Exchange detail' });
    await detail.getByRole('table', { name: 'Request headers' }).waitFor();
    await detail.locator('.detail-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.screenshot({ path: join(SHOTS, `activity-detail-denied-${scheme}.png`) });
    const text = (await detail.innerText()).replace(/\s+/g, ' ');

    assert.match(approvedText, new RegExp(`review #${approved.id} approved`));
    assert.match(deniedText, new RegExp(`review #${denied.id} denied`));
    assert.doesNotMatch(deniedText, /review review/);
    assert.match(text, new RegExp(`kept with review #${denied.id}`));
    assert.doesNotMatch(text, /capture off/);
    assert.doesNotMatch(text, /No response\./);
    assert.match(text, /application\/x-git-receive-pack-result/);
    await page.context().close();
  });
}
