// The real built renderer (out/renderer) in real Chromium, served by the real
// console server. The API behind it is the transport test double (fixture-api).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureBuilt, launchChromium, RENDERER_DIR } from '../helpers/browser';
import { createConsoleServer, type ConsoleServer } from '../../main/console/server';
import { createFixtureApi, HOSTILE_FILE, HOSTILE_LINE, NUL_LINE, TROJAN_LINE, type FixtureApi } from '../console/fixture-api';

const STATIC = RENDERER_DIR;
const TOKEN = 'renderer-test-token-0123456789';

let api: FixtureApi;
let srv: ConsoleServer;
let browser: Browser;
let page: Page;
let shots: string;
const consoleMessages: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  ensureBuilt();
  shots = await mkdtemp(join(tmpdir(), 'airlock-screens-'));
  api = createFixtureApi({ exchanges: 800 });
  srv = await createConsoleServer({ api, token: TOKEN, port: 0, staticDir: STATIC });
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: 'light' });
  page = await ctx.newPage();
  page.on('console', (m) => consoleMessages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => {
    pageErrors.push(`unexpected JS dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${srv.url}/#token=${TOKEN}`);
});

after(async () => {
  await browser?.close();
  await srv?.close();
  console.log(`screenshots in ${shots}`);
});

test('the token leaves the address bar and the review list shows the pending review', async () => {
  await page.getByRole('option').first().waitFor({ timeout: 10_000 });
  assert.doesNotMatch(page.url(), /token=/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('airlock.consoleToken')), TOKEN);
  const item = page.getByRole('option').first();
  const text = await item.innerText();
  assert.match(text, /pending/);
  assert.match(text, /github\.com\/acme\/widgets/);
  assert.match(text, /claude-1/);
  assert.match(text, /feature\/badges/);
  assert.match(text, /expires in/);
  // Its critical finding (bidi controls) shows in the list, before the review is opened.
  assert.match(text, /1 critical/);
  await page.screenshot({ path: join(shots, 'reviews-list.png') });
});

test('opening the review shows the diff; agent text stays text', async () => {
  await page.getByRole('option').first().click();
  await page.locator('table.diff').first().waitFor();
  assert.match(page.url(), /#\/reviews\/rv-0001$/);
  const detail = page.getByRole('article', { name: 'Review detail' });
  const body = await detail.innerText();
  assert.match(body, /refs\/heads\/feature\/badges/);
  assert.match(body, /fast-forward/);
  assert.match(body, /sha256:a3f1c2d4/);
  assert.match(body, /patch truncated after 1 of 41234 lines/);
  assert.match(body, /binary 10\.0 KiB → 11\.6 KiB/);
  // The hostile line is shown literally, with a line number, as an addition.
  const row = page.locator('tr.dl-add', { has: page.getByText(HOSTILE_LINE, { exact: true }) });
  assert.equal(await row.count(), 1);
  assert.equal(await row.locator('td.code').textContent(), HOSTILE_LINE);
  assert.equal(await row.locator('td.ln').nth(1).textContent(), '13'); // @@ +10: two context lines, then +12, +13
  // No element was created from agent text.
  assert.equal(await page.locator('.detail img, .detail b, .detail script').count(), 0);
  assert.equal(await page.locator('img').count(), 0);
  // The hostile file name is a literal path.
  assert.ok(await page.locator('.file-path', { hasText: HOSTILE_FILE }).count() >= 1);
  // A commit message expands on click, still as text.
  await page.getByRole('button', { name: /feat: render badge label as/ }).click();
  assert.match(await detail.locator('.commit-body pre').innerText(), /<script>alert\(2\)<\/script>/);
  await page.screenshot({ path: join(shots, 'review-detail.png'), fullPage: false });
  await page.locator('#file-0-1').scrollIntoViewIfNeeded();
  await page.locator('#file-0-1').evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await page.screenshot({ path: join(shots, 'review-diff.png'), fullPage: false });
});

test('Trojan Source: bidirectional controls in a diff are shown as marked code points, never applied; the finding is listed', async () => {
  const detail = page.getByRole('article', { name: 'Review detail' });
  assert.match(await detail.locator('.findings').innerText(), /critical\s+bidirectional-unicode\s+Added lines: one place with bidirectional control characters \(U\+202E\)/);
  const file = page.locator('section.file', { has: page.locator('.file-path', { hasText: 'src/check.c' }) });
  const code = file.locator('tr.dl-add td.code');
  assert.equal(await code.count(), 1);
  const text = (await code.textContent())!;
  assert.equal(text, TROJAN_LINE.replace(/[\u202e\u2066\u2069]/g, (c) => `⟨U+${c.codePointAt(0)!.toString(16).toUpperCase()}⟩`));
  assert.doesNotMatch(text, /[\u202a-\u202e\u2066-\u2069]/, 'no bidirectional control reaches the page');
  assert.equal(await code.locator('.hidden-char').count(), 4);
  assert.equal(await code.locator('.hidden-char').first().getAttribute('title'), 'U+202E RIGHT-TO-LEFT OVERRIDE');
  // A new symlink says it is one (its "content" is the path it points to).
  const link = page.locator('section.file', { has: page.locator('.file-path', { hasText: 'config/ssh-key' }) });
  assert.equal(await link.locator('.mode-note').textContent(), 'new symlink (120000)');
  await file.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, 'review-trojan-source.png'), fullPage: false });
});

test('a file git calls binary but that is mostly text is shown as text, its NUL byte marked', async () => {
  const file = page.locator('section.file', { has: page.locator('.file-path', { hasText: 'scripts/build.sh' }) });
  assert.match(await file.locator('.warn-note').innerText(), /Binary to git .* shown as text/);
  const code = file.locator('tr.dl-add td.code');
  assert.equal(await code.count(), 3);
  assert.equal(await code.nth(1).textContent(), NUL_LINE.replace('\0', '⟨U+0000⟩'));
  assert.equal(await code.nth(1).locator('.hidden-char').count(), 1);
  assert.match(await file.locator('.file-head').innerText(), /\+3\s+−0/);
  await file.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, 'review-binary-as-text.png'), fullPage: false });
});

test('approving with the keyboard changes the state everywhere', async () => {
  await page.locator('body').press('a');
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('textbox').fill('checked the diff');
  await dialog.getByRole('button', { name: 'Approve' }).click();
  await page.locator('.decision-approved').waitFor({ timeout: 5000 });
  const decided = await page.locator('.decision').innerText();
  assert.match(decided, /approved/i);
  assert.match(decided, /checked the diff/);
  assert.match(decided, /HTTP 200/);
  assert.match(await page.getByRole('option').first().innerText(), /approved/);
  assert.equal((await api.getReview({ id: 'rv-0001' })).state, 'approved');
});

test('a second decision shows the conflict in the error banner', async () => {
  // Decided behind the UI's back (no event), then the user tries to deny it.
  const r = api.addPendingReview({ agent: 'codex-ci', repo: 'acme/infra' });
  await page.getByRole('option', { name: /acme\/infra/ }).waitFor({ timeout: 5000 }); // arrived via SSE
  await page.getByRole('option', { name: /acme\/infra/ }).click();
  await page.getByRole('button', { name: /Deny/ }).waitFor();
  api.decideQuietly(r.id, 'denied', 'decided elsewhere');
  await page.locator('body').press('d');
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const submit = dialog.getByRole('button', { name: 'Deny' });
  assert.equal(await submit.isDisabled(), true, 'deny needs a reason');
  await dialog.getByRole('textbox').fill('nope');
  await submit.click();
  const banner = page.getByRole('alert');
  await banner.waitFor({ timeout: 5000 });
  assert.match(await banner.innerText(), /conflict/i);
  assert.match(await banner.innerText(), /already denied/);
  // The UI then shows the review's real state.
  await page.locator('.decision-denied').waitFor({ timeout: 5000 });
  assert.match(await page.locator('.decision').innerText(), /decided elsewhere/);
});

test('j/k move through the review list', async () => {
  await page.goto(`${srv.url}/#/reviews`);
  await page.getByRole('option').first().waitFor();
  const selectedIs = (i: number) =>
    page.waitForFunction((n) => document.querySelectorAll('[role=option]')[n]?.getAttribute('aria-selected') === 'true', i, { timeout: 5000 });
  await page.locator('body').press('j');
  await selectedIs(0);
  await page.locator('body').press('j');
  await selectedIs(1);
  await page.locator('body').press('k');
  await selectedIs(0);
  assert.match(page.url(), /#\/reviews\/rv-/);
});

test('activity log renders only the visible rows of a long log', async () => {
  await page.goto(`${srv.url}/#/activity`);
  await page.getByRole('table', { name: 'Exchange log' }).waitFor();
  await page.locator('.grid-body .grid-row').first().waitFor();
  const total = await page.getByRole('table', { name: 'Exchange log' }).getAttribute('aria-rowcount');
  assert.ok(Number(total) > 500, `rows: ${total}`);
  const rendered = await page.locator('.grid-body .grid-row').count();
  assert.ok(rendered < 200, `rendered ${rendered} rows`);
  const headText = await page.locator('.grid-head').innerText();
  for (const h of ['Time', 'Agent', 'Kind', 'Method', 'Host', 'Path', 'Status', 'Verdict', 'Duration']) assert.match(headText, new RegExp(h));
  // A non-default port is part of the host; an upstream failure shows the status Airlock answered with.
  const failed = page.locator('.grid-body .grid-row', { hasText: '/-/ping' });
  assert.deepEqual((await failed.getByRole('cell').allInnerTexts()).filter((c) => /registry|502|error/.test(c)), ['registry.internal:8443', '502']);
  assert.equal(await page.locator('.grid-body .grid-row', { hasText: 'git-upload-pack' }).getByRole('cell').nth(4).innerText(), 'github.com');
  await page.locator('.grid-body').evaluate((el) => (el.scrollTop = el.scrollHeight));
  // The oldest loaded row (the seeded git push is the newest; scroll shows the far end) renders after scrolling.
  await page.waitForFunction(() => document.querySelector('.grid-body')!.textContent!.includes('pulls?page=301'), null, { timeout: 5000 });
  assert.ok((await page.locator('.grid-body .grid-row').count()) < 200);
  await page.locator('.grid-body').evaluate((el) => (el.scrollTop = 0));
  await page.screenshot({ path: join(shots, 'activity.png') });
});

test('clicking an exchange opens its detail below the log: headers, bodies as text, Escape closes it', async () => {
  await page.goto(`${srv.url}/#/activity`);
  const row = page.locator('.grid-body .grid-row', { hasText: 'git-upload-pack' }).first();
  await row.click();
  const detail = page.getByRole('region', { name: 'Exchange detail' });
  await detail.getByRole('table', { name: 'Request headers' }).waitFor();
  const text = await detail.innerText();
  assert.match(text, /POST https:\/\/github\.com\/.*git-upload-pack/);
  assert.match(text, /connect 3 ms, TLS 7 ms/);
  assert.match(text, /authorization\s+\[masked\]/);
  assert.match(text, /binary/);
  const pre = detail.locator('pre.body-text');
  assert.equal(await pre.innerText(), '{\n  "comment": "<img src=x onerror=alert(1)><b>agent</b>"\n}');
  assert.equal(await pre.locator('img, b').count(), 0, 'agent text was parsed as HTML');
  await page.screenshot({ path: join(shots, 'activity-detail.png') });
  await page.locator('body').press('Escape');
  await detail.waitFor({ state: 'detached' });
});

test('agents and status views; audit verification shows its result', async () => {
  await page.goto(`${srv.url}/#/agents`);
  await page.getByRole('cell', { name: 'codex-ci' }).waitFor();
  await page.goto(`${srv.url}/#/status`);
  await page.getByText('http://127.0.0.1:8877').waitFor();
  assert.ok(await page.getByText('/home/dev/.airlock/ca/airlock-ca.pem').count());
  await page.getByRole('button', { name: 'Verify audit chain' }).click();
  await page.getByRole('status').waitFor();
  const result = await page.getByRole('status').innerText();
  assert.match(result, /Intact/);
  assert.match(result, /Keep this head outside this machine; later, airlock audit verify --head HASH shows whether the log still holds it/);
  await page.screenshot({ path: join(shots, 'status.png') });
});

test('dark mode renders the detail view', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: 'dark' });
  const p = await ctx.newPage();
  await p.goto(`${srv.url}/#token=${TOKEN}`);
  await p.getByRole('option').first().waitFor();
  await p.goto(`${srv.url}/#/reviews/rv-0001`);
  await p.locator('table.diff').first().waitFor();
  const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(255, 255, 255)');
  await p.screenshot({ path: join(shots, 'review-detail-dark.png') });
  await p.locator('section.file', { has: p.locator('.file-path', { hasText: 'scripts/build.sh' }) }).scrollIntoViewIfNeeded();
  await p.screenshot({ path: join(shots, 'review-binary-as-text-dark.png') });
  await ctx.close();
});

test('the CSP is enforced: injected inline script and inline style attributes are refused', async () => {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  const msgs: string[] = [];
  p.on('console', (m) => msgs.push(m.text()));
  await p.goto(`${srv.url}/#/status`);
  await p.locator('.nav').waitFor();
  const ran = await p.evaluate(async () => {
    const el = document.createElement('script');
    el.textContent = 'window.__inlineRan = true';
    document.body.append(el);
    await new Promise((r) => setTimeout(r, 50));
    return (window as unknown as { __inlineRan?: boolean }).__inlineRan === true;
  });
  assert.equal(ran, false);
  for (let i = 0; i < 50 && !msgs.some((m) => /Content Security Policy/.test(m)); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(msgs.some((m) => /Content Security Policy/.test(m)), 'violation is reported on the console (so the no-violation check below is meaningful)');
  await ctx.close();
});

test('without a token, or with a wrong one, the console says it could not load, never "nothing held"', async () => {
  for (const [name, url] of [['no-token', `${srv.url}/`], ['wrong-token', `${srv.url}/#token=not-the-token-0123456789`]] as const) {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 600 }, colorScheme: name === 'no-token' ? 'light' : 'dark' });
    const p = await ctx.newPage();
    await p.goto(url);
    const pane = p.getByRole('complementary', { name: 'Reviews' });
    await pane.getByText(/^Reviews not loaded: /).waitFor({ timeout: 10_000 });
    const text = await pane.innerText();
    assert.match(text, name === 'no-token' ? /No console token: open the console with the URL that `airlock status` prints/ : /Missing or wrong console token/);
    assert.doesNotMatch(text, /Nothing held|0 pending/);
    await p.screenshot({ path: join(shots, `${name}.png`) });
    await ctx.close();
  }
});

test('no CSP violations, no page errors, no console errors', () => {
  const csp = consoleMessages.filter((m) => /Content Security Policy|Refused to/i.test(m));
  assert.deepEqual(csp, []);
  // The one expected failed request is the 409 provoked by the conflict test.
  const bad = consoleMessages.filter((m) => m.startsWith('error:') && !/status of 409 \(Conflict\)/.test(m));
  assert.deepEqual(bad, []);
  assert.deepEqual(pageErrors, []);
});

test('after the event stream is cut (the gateway restarted), the console reloads what it missed', async () => {
  // Last in this file: it restarts the console server on the same port.
  await page.goto(`${srv.url}/#/reviews`);
  await page.getByRole('option').first().waitFor({ timeout: 10_000 });
  const port = Number(new URL(srv.url).port);
  await srv.close();
  // While no stream is open: a new review whose event nobody receives.
  const missed = api.addPendingReview({ agent: 'missed-while-cut', repo: 'acme/resync' });
  srv = await createConsoleServer({ api, token: TOKEN, port, staticDir: STATIC });
  // EventSource reconnects after the server's `retry` (3 s); the store then reloads.
  const item = page.getByRole('option').filter({ hasText: 'missed-while-cut' });
  await item.first().waitFor({ timeout: 15_000 });
  assert.match(await item.first().innerText(), /acme\/resync/);
  assert.ok(missed.id);
  await page.screenshot({ path: join(shots, 'after-resync.png') });
});
