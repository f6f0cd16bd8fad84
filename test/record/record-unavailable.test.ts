// When the record cannot be written, nothing goes through unrecorded and nothing recorded is lost.
// A real in-process Airlock and a real SQLite file; SQLite's `max_page_count` on the store's own
// connection makes SQLite answer SQLITE_FULL exactly as it does on a full disk (a full disk itself
// cannot be made here without privileges). Real curl through the proxy to a real HTTPS upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ensureBuilt, launchChromium, RENDERER_DIR } from '../helpers/browser';
import type { AirlockService } from '../../main/service';
import { startTestAirlock, type TestAirlock } from '../helpers/airlock';
import { createTestPki } from '../helpers/test-ca';
import { startUpstream, type Upstream } from '../helpers/https-upstream';
import { curlVia, type CurlTarget } from '../gateway/client';
import { waitFor } from './cli';

let upstream: Upstream;
let airlock: TestAirlock;
let service: AirlockService;
let db: Database.Database;
let target: CurlTarget;
let browser: Browser;
let page: Page;

before(async () => {
  const pki = await createTestPki();
  upstream = await startUpstream({ pki });
  airlock = await startTestAirlock({ upstreamCa: [pki.caPath], staticDir: RENDERER_DIR, testStoreConnection: (c) => (db = c) });
  service = airlock.service;
  target = { proxyUrl: airlock.proxyUrl, caPath: airlock.caPath, user: 'filler', token: await airlock.addAgent('filler') };
  // The web console (the same UI as the desktop window) in real Chromium.
  ensureBuilt();
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  await page.goto(`${airlock.consoleUrl}/#token=${airlock.adminToken}`);
  await page.goto(`${airlock.consoleUrl}/#/status`);
  await page.getByText('on: every exchange is recorded').waitFor({ timeout: 10_000 });
});

after(async () => {
  await browser?.close();
  await airlock?.close();
  await upstream?.close();
});

test('a database that refuses writes (SQLITE_FULL): requests are refused with 503, what was recorded is kept and written once it takes writes again', async () => {
  const ok = await curlVia(target, ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${upstream.url}/hello?before`]);
  assert.equal(ok.stdout, '200', ok.stderr);
  assert.deepEqual((await service.getStatus()).recording, { state: 'on' });

  // The database may not grow any more: the next batch that needs a new page is refused.
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
  const forwarded: string[] = [];
  let refused: { marker: string; body: string } | null = null;
  for (let i = 0; i < 400 && !refused; i++) {
    const marker = `fill-${i}`;
    const r = await curlVia(target, ['-s', '-w', '\n%{http_code}', `${upstream.url}/bytes?n=4096&${marker}`]);
    const code = r.stdout.slice(r.stdout.lastIndexOf('\n') + 1);
    if (code === '200') forwarded.push(marker);
    else if (code === '503') refused = { marker, body: r.stdout };
    else assert.fail(`unexpected answer ${code}: ${r.stderr}`);
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 150)); // a batch is written every 100 ms
  }
  assert.ok(refused, 'no request was refused although the database could not grow');
  assert.match(refused.body, /Airlock did not forward this request: it cannot write its record \(database or disk is full \(SQLITE_FULL\), since /);
  assert.ok(!upstream.requests.some((q) => q.url.includes(`&${refused!.marker}`)), 'a refused request reached the upstream');

  const status = await service.getStatus();
  assert.equal(status.recording.state, 'failing');
  assert.ok(status.recording.state === 'failing' && status.recording.held > 0, 'the refused writes are held in memory');

  // Every console view says so at once (pushed over SSE, no reload), as text.
  const banner = page.getByRole('alert').filter({ hasText: 'cannot write its record' });
  await banner.waitFor({ timeout: 5_000 });
  assert.match(await banner.innerText(), /database or disk is full \(SQLITE_FULL\).*Every request is refused/s);
  if (process.env.AIRLOCK_SCREENSHOTS) await page.screenshot({ path: join(process.env.AIRLOCK_SCREENSHOTS, 'record-failing.png') });

  // Still refused a moment later (and still not forwarded).
  const again = await curlVia(target, ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${upstream.url}/hello?during`]);
  assert.equal(again.stdout, '503');
  assert.ok(!upstream.requests.some((q) => q.url === '/hello?during'));
  // A fresh console (not the live stream) lists the refused request from what is held in memory.
  await page.goto(`${airlock.consoleUrl}/#/activity`);
  await page.reload();
  const row = page.locator('.grid-body .grid-row').filter({ hasText: '/hello?during' });
  await row.waitFor({ timeout: 5_000 });
  assert.match(await row.innerText(), /503/);

  // Space again: within a few seconds the held writes are written and requests flow.
  db.pragma('max_page_count = 1073741823');
  await waitFor('recording to resume', async () => ((await service.getStatus()).recording.state === 'on' ? true : undefined), 10_000, 100);
  await banner.waitFor({ state: 'detached', timeout: 5_000 });
  const after = await curlVia(target, ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${upstream.url}/hello?after`]);
  assert.equal(after.stdout, '200');

  // Every forwarded request is in the record, and so are the refusals (503, not forwarded).
  service.store.exchanges.flush();
  const rows = db.prepare('SELECT path, status, error FROM exchanges').all() as Array<{ path: string; status: number; error: string | null }>;
  const byPath = new Map(rows.map((r) => [r.path, r]));
  for (const m of forwarded) assert.equal(byPath.get(`/bytes?n=4096&${m}`)?.status, 200, `forwarded request ${m} is missing from the record`);
  assert.equal(byPath.get(`/bytes?n=4096&${refused.marker}`)?.status, 503);
  assert.equal(byPath.get('/hello?during')?.status, 503);
  assert.match(byPath.get('/hello?during')?.error ?? '', /cannot write its record/);
  assert.equal(byPath.get('/hello?after')?.status, 200);

  // The outage is part of the audit chain, which still verifies.
  const ev = service.store.audit.list().filter((e) => e.action === 'record.recovered');
  assert.equal(ev.length, 1);
  const d = ev[0]!.details as { since: string; until: string; error: string; writesSaved: number; writesDropped: number };
  assert.match(d.error, /SQLITE_FULL/);
  assert.ok(d.writesSaved >= 2, `writesSaved ${d.writesSaved}`);
  assert.equal(d.writesDropped, 0);
  assert.ok(d.since <= d.until);
  assert.equal(service.store.audit.verify().ok, true);
});

test('the disk that holds the record is low (under recordDiskWarnBytes): status says so and every console view warns', async () => {
  const low = await startTestAirlock({ staticDir: RENDERER_DIR, options: { recordDiskWarnBytes: 2 ** 52 } }); // 4 PiB: any real disk is "low"
  try {
    const status = await low.service.getStatus();
    assert.ok(status.disk && status.disk.freeBytes > 0 && status.disk.low, JSON.stringify(status.disk));
    const usual = (await airlock.service.getStatus()).disk!;
    assert.equal(usual.low, usual.freeBytes < 1024 ** 3, 'the default limit is 1 GiB');
    await page.goto(`${low.consoleUrl}/#token=${low.adminToken}`);
    await page.goto(`${low.consoleUrl}/#/reviews`);
    const warn = page.getByRole('status').filter({ hasText: 'holds Airlock\'s record' });
    await warn.waitFor({ timeout: 5_000 });
    assert.match(await warn.innerText(), /has [\d.]+ [KMG]i?B free\. When it is full, Airlock refuses every request/);
    if (process.env.AIRLOCK_SCREENSHOTS) await page.screenshot({ path: join(process.env.AIRLOCK_SCREENSHOTS, 'record-disk-low.png') });
  } finally {
    await low.close();
  }
});
