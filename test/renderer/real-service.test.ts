// End to end through the one UI: a real `git push` is held by the real gateway,
// shows up live in the real web console in Chromium, is approved there, and lands upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureBuilt, launchChromium, RENDERER_DIR } from '../helpers/browser';
import { createTestPki, gitEnvIsolated, makeTempDir, removeDir, runGit, startGitServer, type GitServer } from '../helpers/index';
import { startAirlock, type RunningAirlock } from '../../main/service';
import { createLogger } from '../../main/log';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import { sqlite } from '../../main/store/sqlite';
import type { HarEntry } from '../../main/store/har';

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

test('Activity: "Export HAR" saves the log, "Export session (HAR)" one connection; each file is the record, audited as a download', async () => {
  await page.getByRole('link', { name: 'Activity' }).click();
  const log = page.getByRole('table', { name: 'Exchange log' });
  await log.getByRole('row').filter({ hasText: 'ui-agent' }).first().waitFor({ timeout: 10_000 });
  // The push's exchange is recorded once its answer has gone to git (a moment after the push returns).
  for (let i = 0; i < 100 && !airlock.service.store.exchanges.list({ kind: 'git-push' }).some((x) => x.reviewId && x.endedAt !== null); i++) await new Promise((r) => setTimeout(r, 50));
  const shown = await log.getByRole('row').filter({ hasText: 'ui-agent' }).count();

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export HAR' }).click()]);
  assert.match(download.suggestedFilename(), /^airlock-exchanges-\d{8}T\d{6}Z\.har$/);
  const file = join(home, 'log.har');
  await download.saveAs(file);
  const text = readFileSync(file, 'utf8');
  const har = JSON.parse(text) as { log: { entries: HarEntry[]; pages: Array<{ id: string }> } };
  assert.equal(har.log.entries.length, shown, 'one entry per exchange in the log');
  const push = har.log.entries.find((e) => e._airlock.kind === 'git-push' && e._airlock.reviewId !== null);
  assert.ok(push, 'the held push is in the HAR');
  assert.equal(push._airlock.reviewOutcome, 'approved', JSON.stringify(push._airlock));
  assert.ok(har.log.entries.every((e) => e.request.headers.every((h) => h.name !== 'proxy-authorization')), 'the agent\'s proxy credential is not in it');
  await page.getByText(`Saved ${download.suggestedFilename()}: ${shown} exchange`).waitFor();

  // One session from the exchange detail: only that connection's exchanges.
  await log.getByRole('row').filter({ hasText: 'git-push' }).filter({ hasText: 'POST' }).first().click();
  const detail = page.getByRole('region', { name: 'Exchange detail' });
  await detail.getByRole('button', { name: 'Export session (HAR)' }).waitFor();
  await page.screenshot({ path: join(home, '..', `airlock-activity-har-${process.pid}.png`) });
  console.log(`screenshot: ${join(home, '..', `airlock-activity-har-${process.pid}.png`)}`);
  const [one] = await Promise.all([page.waitForEvent('download'), detail.getByRole('button', { name: 'Export session (HAR)' }).click()]);
  assert.equal(one.suggestedFilename().startsWith(`airlock-session-${push.pageref}-`), true, one.suggestedFilename());
  const sessionHar = JSON.parse(readFileSync((await one.path())!, 'utf8')) as { log: { entries: HarEntry[]; pages: Array<{ id: string }> } };
  assert.deepEqual(sessionHar.log.pages.map((p) => p.id), [push.pageref]);
  assert.ok(sessionHar.log.entries.some((e) => e._airlock.id === push._airlock.id));
  assert.ok(sessionHar.log.entries.every((e) => e.pageref === push.pageref));

  // Both exports are in the audit chain, with the channel and the digest of the bytes saved.
  const events = airlock.service.store.audit.list().filter((e) => e.action === 'exchanges.exported');
  assert.equal(events.length, 2);
  const d = events[0]!.details as { out: string; sha256: string; count: number };
  assert.equal(d.out, 'download (web console)');
  assert.equal(d.sha256, createHash('sha256').update(text).digest('hex'));
  assert.equal(d.count, shown);
  assert.equal((events[1]!.details as { session: string }).session, push.pageref);
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
  const lastOfPush = airlock.service.store.audit.list().filter((e) => e.action.startsWith('review.')).at(-1)!; // the push's last review event
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

  // Someone with the file cuts the end off (the triggers dropped first, and put back after): the chain alone
  // still verifies when what was cut is not a review's event (the reviews table would say otherwise).
  const Database = sqlite();
  const db = new Database(join(dataDir, 'airlock.db'));
  const triggers = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger'").all() as Array<{ sql: string }>;
  const cutFrom = (seq: number) => {
    db.exec('DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;');
    db.prepare('DELETE FROM audit_events WHERE seq >= ?').run(seq);
    for (const t of triggers) db.exec(t.sql);
  };
  cutFrom(later.seq);
  assert.equal((await airlock.service.verifyAudit()).ok, true);
  await page.getByLabel('Kept head').fill(later.hash);
  await verify.click();
  await result.filter({ hasText: 'BROKEN' }).waitFor();
  assert.match(await result.innerText(), new RegExp(`not the log the head ${later.hash} was taken from`));
  // Cut further, into the review's events: the reviews table no longer matches the chain, head or not.
  cutFrom(lastOfPush.seq);
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
