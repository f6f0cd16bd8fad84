// End to end through the one UI: a real `git push` is held by the real gateway,
// shows up live in the real web console in Chromium, is approved there, and lands upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureBuilt, launchChromium, RENDERER_DIR } from '../helpers/browser';
import { createTestPki, gitEnvIsolated, makeTempDir, removeDir, runGit, startGitServer, type GitServer } from '../helpers/index';
import { startAirlock, type RunningAirlock } from '../../main/service';
import { createLogger } from '../../main/log';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import { sqlite } from '../../main/store/sqlite';

const STATIC = RENDERER_DIR;

let server: GitServer;
let airlock: RunningAirlock;
let browser: Browser;
let page: Page;
let home: string;
let dataDir: string;
const pageErrors: string[] = [];

before(async () => {
  ensureBuilt();
  const pki = await createTestPki();
  server = await startGitServer({ pki, auth: { username: 'alice', password: 'upstream-secret-1' } });
  dataDir = await makeTempDir('airlock-ui-e2e-');
  home = await makeTempDir('airlock-ui-home-');
  airlock = await startAirlock({ dataDir, proxyPort: 0, consolePort: 0, upstreamCa: [pki.caPath], log: createLogger('error'), staticDir: STATIC });
  await airlock.service.credentials.set(new URL(server.url).host, 'upstream-secret-1', { username: 'alice' });
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${airlock.consoleUrl}/#token=${airlock.adminToken}`);
});

after(async () => {
  await browser?.close();
  await airlock?.service.close();
  await server?.close();
  await removeDir(home);
  await removeDir(dataDir);
});

test('a held push appears live in the web console, is approved there, and lands upstream', async () => {
  const repo = await server.createRepo('ui', { seed: true });
  const token = newAgentToken();
  airlock.service.store.agents.add('ui-agent', ['ai-coding']);
  airlock.service.store.agents.addToken('ui-agent', hashToken(token), 'test', null);
  const env = {
    ...gitEnvIsolated(home),
    HTTPS_PROXY: `http://ui-agent:${token}@127.0.0.1:${new URL(airlock.proxyUrl).port}`,
    GIT_SSL_CAINFO: airlock.caPath,
  };
  const work = join(home, 'w');
  assert.equal((await runGit(['clone', '-q', repo.url, work], { env })).code, 0);
  writeFileSync(join(work, 'notes.txt'), 'line from the agent <script>alert(1)</script>\n');
  await runGit(['add', '.'], { cwd: work, env });
  await runGit(['commit', '-q', '-m', 'agent: add notes'], { cwd: work, env });
  const push = runGit(['push', 'origin', 'main'], { cwd: work, env });

  // Arrives over SSE: no reload.
  const item = page.getByRole('option').filter({ hasText: 'ui-agent' });
  await item.waitFor({ timeout: 30_000 });
  assert.match(await item.innerText(), /pending/);
  await item.click();
  await page.locator('table.diff').first().waitFor({ timeout: 10_000 });
  const detail = await page.getByRole('article', { name: 'Review detail' }).innerText();
  assert.match(detail, /refs\/heads\/main/);
  assert.match(detail, /notes\.txt/);
  assert.match(detail, /<script>alert\(1\)<\/script>/, 'agent-written text is shown as text');
  assert.equal(await page.locator('table.diff script').count(), 0);

  const shot = join(home, '..', `airlock-real-review-${process.pid}.png`);
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
  await page.locator('body').press('a');
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Approve' }).click();
  const r = await push;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /push held for review #\d+/);
  const head = (await runGit(['rev-parse', 'HEAD'], { cwd: work, env })).stdout.trim();
  assert.equal((await server.refs('ui'))['refs/heads/main'], head);
  await page.locator('.decision-approved').waitFor({ timeout: 10_000 });
  assert.deepEqual(pageErrors, []);
});

test('audit: the Status view verifies against a kept head, and shows a cut-off end that the chain alone hides', async () => {
  // The service refuses what it does not know, as the CLI does.
  await assert.rejects(airlock.service.verifyAudit({ nope: 1 } as unknown as { head?: string }), /Unknown verifyAudit filter "nope"/);
  await assert.rejects(airlock.service.verifyAudit({ head: 'abc' }), /A kept head must be the 64 hex digits/);

  await page.goto(`${airlock.consoleUrl}/#/status`);
  const verify = page.getByRole('button', { name: 'Verify audit chain' });
  await verify.click();
  const result = page.getByRole('status');
  await result.filter({ hasText: 'Intact' }).waitFor();
  // What the gateway recorded so far (the push above, its fetches, their sessions), sealed: the verify the
  // Status view runs reads every row again, on a connection of its own, while the gateway serves.
  assert.ok(airlock.service.store.exchanges.count() > 0);
  const lastOfPush = airlock.service.store.audit.head()!; // the push's last review event
  airlock.service.store.exchanges.seal();
  await verify.click();
  await result.filter({ hasText: /exchanges? (and \d+ sessions? )?match (its|their) seal/ }).waitFor();
  await page.screenshot({ path: join(home, '..', `airlock-audit-seals-${process.pid}.png`) });
  console.log(`screenshot: ${join(home, '..', `airlock-audit-seals-${process.pid}.png`)}`);
  const kept = airlock.service.store.audit.head()!;
  assert.match(await result.innerText(), new RegExp(`head ${kept.hash}`));

  // Later: one more event; the kept head is still in the log.
  airlock.service.store.audit.append({ actor: 'test', action: 'test.later', subject: 'x' });
  await page.getByLabel('Kept head').fill(kept.hash);
  await page.getByLabel('Kept head').press('Enter');
  await result.filter({ hasText: `The kept head is seq ${kept.seq}` }).waitFor();
  assert.match(await result.innerText(), new RegExp(`the head given is seq ${kept.seq}, 1 event since`));

  const later = airlock.service.store.audit.head()!;

  // Someone with the file cuts the end off (the triggers dropped first): the chain alone still verifies
  // when what was cut is not a review's event (the reviews table would say otherwise).
  const Database = sqlite();
  const db = new Database(join(dataDir, 'airlock.db'));
  db.exec('DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;');
  db.prepare('DELETE FROM audit_events WHERE seq >= ?').run(later.seq);
  assert.equal((await airlock.service.verifyAudit()).ok, true);
  await page.getByLabel('Kept head').fill(later.hash);
  await verify.click();
  await result.filter({ hasText: 'BROKEN' }).waitFor();
  assert.match(await result.innerText(), new RegExp(`not the log the head ${later.hash} was taken from`));
  // Cut further, into the review's events: the reviews table no longer matches the chain, head or not.
  db.prepare('DELETE FROM audit_events WHERE seq >= ?').run(lastOfPush.seq);
  db.close();
  const cut = await airlock.service.verifyAudit();
  assert.equal(cut.ok, false);
  assert.match(cut.message, /the reviews table does not match the audit chain: review \d+: /);
  assert.equal(await result.getByText('The kept head is seq').count(), 0);
  await page.screenshot({ path: join(home, '..', `airlock-audit-head-${process.pid}.png`) });
  console.log(`screenshot: ${join(home, '..', `airlock-audit-head-${process.pid}.png`)}`);

  // A malformed head is the API's one-sentence error, in the error banner.
  await page.getByLabel('Kept head').fill('not-a-hash');
  await verify.click();
  await page.getByText(/A kept head must be the 64 hex digits/).waitFor();
  assert.deepEqual(pageErrors, []);
});
