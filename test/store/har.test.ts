// The HAR mapping (main/store/har.ts) on records the end-to-end test cannot easily produce: no response, a held
// push, bodies not kept, a gzip body cut at the cap, IPv6, reused connections, a session row that is gone.
// The end-to-end export through a real gateway and Chromium's replay of it are in test/record/har-export.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, deflateRawSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { HarWriter, harEntry, harFromRecord } from '../../main/store/har';
import { openStore, type ExchangeRecord, type SessionRecord } from '../../main/store';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { escapeJsonText } from '../../main/cli/format-record';

function rec(over: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return {
    id: '7', sessionId: 's-1', agent: 'bot', startedAt: '2026-12-06T10:00:00.000Z', endedAt: '2026-12-06T10:00:00.050Z',
    method: 'GET', scheme: 'https', host: 'api.example.com', port: 443, path: '/v1/items?x=1&y=%C3%A9', kind: 'http-api',
    verdict: 'allow', ruleId: 'builtin:allow-other', explanation: 'allowed', status: 200, error: null,
    requestBytes: 0, responseBytes: 2, timings: { connectMs: 3, tlsMs: 7, upstreamMs: 20, totalMs: 50 },
    requestHeaders: { host: 'api.example.com', accept: ['a/b', 'c/d'] },
    responseHeaders: { 'content-type': 'application/json', 'set-cookie': ['a=1; Path=/; HttpOnly', 'b=2'] },
    requestBody: null, responseBody: Buffer.from('{}'), requestBodyComplete: true, responseBodyComplete: true,
    requestBodySha256: null, responseBodySha256: 'ab', reviewId: null,
    ...over,
  };
}

test('a plain exchange: URL, repeated headers, query, response cookies, phases that add up', () => {
  const e = harEntry(rec());
  assert.equal(e.request.url, 'https://api.example.com/v1/items?x=1&y=%C3%A9');
  assert.deepEqual(e.request.queryString, [{ name: 'x', value: '1' }, { name: 'y', value: 'é' }]);
  assert.deepEqual(e.request.headers, [{ name: 'host', value: 'api.example.com' }, { name: 'accept', value: 'a/b' }, { name: 'accept', value: 'c/d' }]);
  assert.deepEqual(e.response.cookies, [{ name: 'a', value: '1' }, { name: 'b', value: '2' }]);
  assert.equal(e.request.postData, undefined);
  assert.deepEqual(e.timings, { blocked: -1, dns: -1, connect: 10, ssl: 7, send: 0, wait: 20, receive: 20 });
  assert.equal(e.time, 50);
  assert.equal(e.pageref, 's-1');
});

test('a reused connection has no connect phase; an exchange still open has no total', () => {
  const reused = harEntry(rec({ timings: { connectMs: null, tlsMs: null, upstreamMs: 4, totalMs: 9 } }));
  assert.deepEqual(reused.timings, { blocked: -1, dns: -1, connect: -1, ssl: -1, send: 0, wait: 4, receive: 5 });
  const open = harEntry(rec({ endedAt: null, timings: { connectMs: null, tlsMs: null, upstreamMs: 4, totalMs: null } }));
  assert.equal(open.time, 4);
  assert.equal(open.timings.receive, 0);
});

test('no response: status 0, no body size, and the reason in the comment', () => {
  const e = harEntry(rec({ status: null, error: 'upstream refused the connection', responseHeaders: null, responseBody: null, responseBytes: 0 }));
  assert.equal(e.response.status, 0);
  assert.equal(e.response.statusText, '');
  assert.equal(e.response.httpVersion, '');
  assert.equal(e.response.bodySize, -1);
  assert.deepEqual(e.response.headers, []);
  assert.match(e.comment, /error: upstream refused the connection; no response$/);
  assert.equal(e._airlock.error, 'upstream refused the connection');
});

test('a held push: its body is named by the review that keeps it, and the wait for the review is "blocked"', () => {
  const e = harEntry(rec({
    method: 'POST', kind: 'git-push', verdict: 'review', ruleId: 'builtin:hold-push', explanation: null, reviewId: '12', requestBytes: 4096,
    requestBody: null, requestBodySha256: 'f'.repeat(64), requestHeaders: { 'content-type': 'application/x-git-receive-pack-request' },
    timings: { connectMs: null, tlsMs: null, upstreamMs: 30, totalMs: 60_030 },
  }));
  assert.deepEqual(e.request.postData, {
    mimeType: 'application/x-git-receive-pack-request', text: '',
    comment: `4096 bytes (SHA-256 ${'f'.repeat(64)}), kept with review #12: airlock exchange 7 --body request`,
  });
  assert.equal(e._airlock.requestBody.keptWithReview, '12');
  assert.equal(e.timings.blocked, 60_000);
  assert.equal(e.timings.receive, 0);
  assert.match(e.comment, /review by builtin:hold-push; review #12 approved$/);
  assert.equal(e._airlock.reviewOutcome, 'approved');
});

test('bodies not kept, and a gzip body cut at the cap (not decoded, base64, both said)', () => {
  const dropped = harEntry(rec({ responseBody: null, responseBytes: 900, method: 'POST', requestBody: null, requestBytes: 10 }));
  assert.equal(dropped.response.content.size, 900);
  assert.equal(dropped.response.content.text, undefined);
  assert.match(dropped.response.content.comment!, /^900 bytes received, not kept/);
  assert.match(dropped.request.postData!.comment!, /^10 bytes sent, not kept/);

  const whole = gzipSync(Buffer.from('x'.repeat(5000)));
  const cut = whole.subarray(0, 20);
  const e = harEntry(rec({ responseHeaders: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, responseBody: cut, responseBytes: whole.length, responseBodyComplete: false }));
  assert.equal(e.response.content.encoding, 'base64');
  assert.ok(Buffer.from(e.response.content.text!, 'base64').equals(cut));
  assert.equal(e.response.content.compression, undefined);
  assert.equal(e.response.content.comment, `gzip-encoded, cut at the capture cap: not decoded; first 20 bytes of ${whole.length} kept (bodyCaptureBytes)`);

  const broken = harEntry(rec({ responseHeaders: { 'content-encoding': 'gzip' }, responseBody: Buffer.from('not gzip at all') }));
  assert.equal(broken.response.content.text, 'not gzip at all');
  assert.equal(broken.response.content.comment, 'gzip-encoded; does not decode');
  assert.equal(broken.response.content.mimeType, 'x-unknown');
});

test('IPv6 and a port that is not the default; a redirect\'s Location', () => {
  const e = harEntry(rec({ scheme: 'http', host: '::1', port: 8080, path: '/', status: 302, responseHeaders: { location: '/next' } }));
  assert.equal(e.request.url, 'http://[::1]:8080/');
  assert.equal(e.response.redirectURL, '/next');
  assert.equal(e.response.statusText, 'Found');
});

test('HarWriter: valid JSON in pieces, a page per session (in start order), a stand-in page for a session row that is gone, escapes kept', () => {
  const sessions: Record<string, SessionRecord> = {
    'later': { id: 'later', agent: 'bot', clientAddress: '127.0.0.1', startedAt: '2026-12-06T10:05:00.000Z', endedAt: null, token: null, via: 'run bot (pid 1)' },
  };
  const w = new HarWriter({ name: 'Airlock', version: '0.1.0' }, (id) => sessions[id] ?? null, 'a comment', escapeJsonText);
  const hostile = '/\u2028\u202eevil\u001b[31m';
  let text = w.head();
  text += w.entry(rec({ id: '1', sessionId: 'later', startedAt: '2026-12-06T10:05:01.000Z' }));
  text += w.entry(rec({ id: '2', sessionId: 'gone', startedAt: '2026-12-06T10:06:00.000Z', path: hostile }));
  text += w.entry(rec({ id: '3', sessionId: null, startedAt: '2026-12-06T10:07:00.000Z' }));
  text += w.tail();
  assert.equal(w.entries, 3);
  assert.doesNotMatch(text, /[\u2028\u202e\u001b]/);
  const har = JSON.parse(text) as { log: { entries: Array<{ request: { url: string }; pageref?: string }>; pages: Array<{ id: string; title: string; comment?: string; startedDateTime: string }>; comment: string } };
  assert.equal(har.log.entries[1]!.request.url, `https://api.example.com${hostile}`);
  assert.equal(har.log.entries[2]!.pageref, undefined);
  assert.deepEqual(har.log.pages.map((p) => p.id), ['later', 'gone']);
  assert.equal(har.log.pages[0]!.title, 'bot: session later from 127.0.0.1');
  assert.equal(har.log.pages[1]!.title, 'bot: session gone');
  assert.equal(har.log.pages[1]!.startedDateTime, '2026-12-06T10:06:00.000Z');
  assert.match(har.log.pages[1]!.comment!, /not in the record/);
  assert.equal(har.log.comment, 'a comment');
  // An empty export is a valid log too.
  const empty = new HarWriter({ name: 'Airlock', version: '0' }, () => null, '');
  assert.deepEqual(JSON.parse(empty.head() + empty.tail()).log.entries, []);
});

test('harFromRecord: a snapshot read on its own connection while the store keeps writing; refused past maxBytes', async () => {
  const dir = await makeTempDir('airlock-har-store-');
  const store = openStore(join(dir, 'airlock.db'));
  try {
    store.sessions.start({ id: 's-1', agent: 'bot', clientAddress: '127.0.0.1', startedAt: '2026-12-06T09:59:59.000Z' });
    for (let i = 0; i < 300; i++) store.exchanges.record(rec({ id: store.exchanges.nextId(), path: `/n/${i}` }));
    store.exchanges.flush();
    const creator = { name: 'Airlock', version: 't' };
    const tooLarge = (n: number) => new Error(`too large: ${n}`);
    const exporting = harFromRecord(store.file, {}, { creator, comment: '', maxBytes: 64 * 1024 * 1024, tooLarge });
    // The export reads 32 rows per turn of the event loop; the gateway's writes go on meanwhile, on its own
    // connection, and are not in the snapshot the export started with.
    for (let i = 0; i < 50; i++) store.exchanges.record(rec({ id: store.exchanges.nextId(), path: `/later/${i}` }));
    store.exchanges.flush();
    const har = await exporting;
    assert.equal(har.count, 300);
    const parsed = JSON.parse(har.text) as { log: { entries: Array<{ request: { url: string } }>; pages: Array<{ title: string }> } };
    assert.deepEqual(parsed.log.entries.map((e) => new URL(e.request.url).pathname), Array.from({ length: 300 }, (_, i) => `/n/${i}`));
    assert.equal(parsed.log.pages[0]!.title, 'bot: session s-1 from 127.0.0.1');
    assert.equal(har.bytes, Buffer.byteLength(har.text));
    assert.equal(store.exchanges.count(), 350);

    await assert.rejects(harFromRecord(store.file, { sessionId: 's-1' }, { creator, comment: '', maxBytes: 10_000, tooLarge }), /^Error: too large: \d+$/);
    const none = await harFromRecord(store.file, { sessionId: 'nope' }, { creator, comment: '', maxBytes: 10_000, tooLarge });
    assert.equal(none.count, 0);
  } finally {
    store.close();
    await removeDir(dir);
  }
});

test('harFromRecord counts UTF-8 bytes against maxBytes and yields to the event loop between large rows', async () => {
  const dir = await makeTempDir('airlock-har-big-');
  const store = openStore(join(dir, 'airlock.db'));
  try {
    // 4 rows, each a 600 000-character body of CJK text: 1.8 MB of UTF-8 each, 0.6 M UTF-16 units.
    const text = '漢'.repeat(600_000);
    for (let i = 0; i < 4; i++) {
      store.exchanges.record(rec({ id: store.exchanges.nextId(), responseHeaders: { 'content-type': 'text/plain; charset=utf-8' }, responseBody: Buffer.from(text), responseBytes: Buffer.byteLength(text) }));
    }
    store.exchanges.flush();
    const creator = { name: 'Airlock', version: 't' };
    const tooLarge = (n: number) => new Error(`too large: ${n}`);
    // 4 × 0.6 M characters fit 4 MB counted in UTF-16 units; in UTF-8 they do not.
    await assert.rejects(harFromRecord(store.file, {}, { creator, comment: '', maxBytes: 4_000_000, tooLarge }), /too large/);
    let turns = 0;
    let running = true;
    const tick = (): void => {
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const har = await harFromRecord(store.file, {}, { creator, comment: '', maxBytes: 32 * 1024 * 1024, tooLarge });
    running = false;
    assert.equal(har.count, 4);
    assert.ok(har.bytes > 4 * 1_800_000);
    assert.ok(turns >= 3, `the event loop turned ${turns} times while 4 rows of 1.8 MB were made`);
  } finally {
    store.close();
    await removeDir(dir);
  }
});

test('phases never go below zero when the measured parts add up to a hair over the total (floating point)', () => {
  // A real row: connect 0.328 ms on a new connection, upstream 2 ms, total 2 ms (rounded apart).
  const e = harEntry(rec({ timings: { connectMs: 0.328, tlsMs: null, upstreamMs: 2, totalMs: 2 } }));
  assert.equal(e.timings.receive, 0);
  assert.equal(e.time, 2.328);
  for (const [c, t, u, total] of [[0.1, 0.2, 0.3, 0.6], [1.1, 2.2, 3.3, 6.6], [0.7, 0.1, 0.2, 1.0]] as const) {
    const x = harEntry(rec({ timings: { connectMs: c, tlsMs: t, upstreamMs: u, totalMs: total } }));
    assert.ok(x.timings.receive >= 0 && x.timings.connect >= 0, JSON.stringify(x.timings));
    assert.ok(Math.abs(x.timings.connect + x.timings.wait + x.timings.receive - x.time) < 1e-9);
  }
});

test('a list of codings (gzip, br) and raw deflate are decoded as the masker decodes them', () => {
  const text = Buffer.from('{"ok":true,"items":[1,2,3]}');
  const both = brotliCompressSync(gzipSync(text)); // gzip applied first, then br: `gzip, br`
  const e = harEntry(rec({ responseHeaders: { 'content-type': 'application/json', 'content-encoding': 'gzip, br' }, responseBody: both, responseBytes: both.length }));
  assert.equal(e.response.content.text, text.toString());
  assert.equal(e.response.content.size, text.length);
  assert.equal(e.response.content.compression, text.length - both.length);
  const raw = deflateRawSync(text);
  const d = harEntry(rec({ responseHeaders: { 'content-encoding': 'deflate' }, responseBody: raw, responseBytes: raw.length }));
  assert.equal(d.response.content.text, text.toString());
  const unknown = harEntry(rec({ responseHeaders: { 'content-encoding': 'compress' }, responseBody: Buffer.from([0x1f, 0x9d, 0x90]) }));
  assert.equal(unknown.response.content.comment, 'compress-encoded');
  assert.equal(unknown.response.content.encoding, 'base64');
});
