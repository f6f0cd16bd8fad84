import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { createConsoleServer, CONSOLE_CSP, type ConsoleServer } from '../../main/console/server';
import { createFixtureApi, type FixtureApi } from './fixture-api';
import { makeTempDir, removeDir } from '../helpers/tmp';

const TOKEN = 'test-token-0123456789abcdef';
let dir: string;
let emptyDir: string;
let api: FixtureApi;
let srv: ConsoleServer;
let unbuilt: ConsoleServer;

before(async () => {
  dir = await makeTempDir('airlock-console-');
  emptyDir = await makeTempDir('airlock-console-empty-');
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>Airlock</title>');
  await writeFile(join(dir, 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(dir, 'assets', 'app.css'), 'body{}');
  api = createFixtureApi();
  srv = await createConsoleServer({ api, token: TOKEN, port: 0, staticDir: dir });
  unbuilt = await createConsoleServer({ api, token: TOKEN, port: 0, staticDir: emptyDir });
});

after(async () => {
  await srv?.close();
  await unbuilt?.close();
  await removeDir(dir);
  await removeDir(emptyDir);
});

function call(method: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${srv.url}/api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Sends a request with the path exactly as given (fetch would normalise `..`). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('binds 127.0.0.1 and reports its URL', async () => {
  assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(srv.port > 0);
  // Not reachable on another local address (the host's non-loopback interfaces are not bound).
  await assert.rejects(
    new Promise<void>((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.2', port: srv.port });
      s.on('connect', () => { s.destroy(); resolve(); });
      s.on('error', reject);
    }),
  );
});

test('401 without the bearer token, and with a wrong one', async () => {
  const res = await fetch(`${srv.url}/api/getStatus`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).code, 'unauthorized');
  const wrong = await call('getStatus', {}, { Authorization: 'Bearer nope' });
  assert.equal(wrong.status, 401);
});

test('403 when Origin is foreign, even with the token', async () => {
  const res = await call('listReviews', {}, { Origin: 'https://evil.example' });
  assert.equal(res.status, 403);
  const own = await call('listReviews', {}, { Origin: srv.url });
  assert.equal(own.status, 200);
});

test('dispatches every API method with its argument', async () => {
  const status = await (await call('getStatus', {})).json();
  assert.equal(status.version, '0.1.0-fixture');
  const reviews = await (await call('listReviews', { state: 'pending' })).json();
  assert.equal(reviews.length, 1);
  const one = await (await call('getReview', { id: reviews[0].id })).json();
  assert.equal(one.id, reviews[0].id);
  assert.ok(Array.isArray(await (await call('listExchanges', { limit: 2 })).json()));
  assert.equal((await (await call('listAgents', {})).json()).length, 2);
  assert.equal((await (await call('verifyAudit', {})).json()).ok, true);
  assert.deepEqual(api.calls.findLast((c) => c.method === 'listReviews')?.arg, { state: 'pending' });
  const unknown = await call('close', {});
  assert.equal(unknown.status, 404);
  const proto = await call('constructor', {});
  assert.equal(proto.status, 404);
});

test('400 on bad JSON, 413 over 1 MiB, 405 on GET', async () => {
  const bad = await call('getReview', '{not json');
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys(await bad.json()).sort(), ['code', 'message']);
  const big = await call('getReview', JSON.stringify({ id: 'x'.repeat(1024 * 1024 + 10) }));
  assert.equal(big.status, 413);
  const get = await fetch(`${srv.url}/api/getStatus`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(get.status, 405);
});

test('maps AirlockError codes to HTTP statuses (409 on a second decision, 404 unknown id)', async () => {
  const local = createFixtureApi();
  const s = await createConsoleServer({ api: local, token: TOKEN, port: 0, staticDir: dir });
  try {
    const post = (m: string, b: unknown) =>
      fetch(`${s.url}/api/${m}`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(b) });
    const [r] = await local.listReviews({ state: 'pending' });
    const first = await post('approveReview', { id: r!.id, reason: 'looks fine' });
    assert.equal(first.status, 200);
    assert.equal((await first.json()).state, 'approved');
    const second = await post('denyReview', { id: r!.id, reason: 'too late' });
    assert.equal(second.status, 409);
    const body = await second.json();
    assert.equal(body.code, 'conflict');
    assert.match(body.message, /already approved/);
    assert.equal((await post('getReview', { id: 'rv-nope' })).status, 404);
    assert.equal((await post('denyReview', { id: r!.id })).status, 400);
  } finally {
    await s.close();
  }
});

test('unexpected errors become 500 without leaking details', async () => {
  const boom = createFixtureApi();
  boom.getStatus = async () => { throw new Error('secret /etc/shadow detail'); };
  const s = await createConsoleServer({ api: boom, token: TOKEN, port: 0, staticDir: dir });
  const origError = console.error;
  console.error = () => {};
  try {
    const res = await fetch(`${s.url}/api/getStatus`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.doesNotMatch(text, /shadow/);
    assert.equal(JSON.parse(text).code, 'internal');
  } finally {
    console.error = origError;
    await s.close();
  }
});

test('SSE delivers events to a token holder and refuses others', async () => {
  const denied = await fetch(`${srv.url}/api/events?token=wrong`);
  assert.equal(denied.status, 401);
  const ac = new AbortController();
  const res = await fetch(`${srv.url}/api/events?token=${TOKEN}`, { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  // Wait until the subscription is registered, then emit.
  for (let i = 0; i < 50 && api.listenerCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const added = api.addPendingReview({ agent: 'sse-agent' });
  const deadline = Date.now() + 5000;
  let event: { type: string; review?: { id: string } } | undefined;
  while (!event && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    for (const block of buf.split('\n\n')) {
      const line = block.split('\n').find((l) => l.startsWith('data: '));
      if (!line) continue;
      const e = JSON.parse(line.slice(6));
      if (e.type === 'review') event = e;
    }
  }
  ac.abort();
  assert.equal(event?.review?.id, added.id);
  for (let i = 0; i < 50 && api.listenerCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(api.listenerCount, 0, 'closing the stream unsubscribes');
});

test('static files: index, assets with content types, security headers', async () => {
  const res = await fetch(`${srv.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.match(CONSOLE_CSP, /script-src 'self'/);
  assert.match(CONSOLE_CSP, /frame-ancestors 'none'/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.match((await fetch(`${srv.url}/assets/app.js`)).headers.get('content-type') ?? '', /^text\/javascript/);
  assert.match((await fetch(`${srv.url}/assets/app.css`)).headers.get('content-type') ?? '', /^text\/css/);
  assert.equal((await fetch(`${srv.url}/assets/missing.js`)).status, 404);
  assert.equal((await fetch(`${srv.url}/assets`)).status, 404, 'directories are not listed');
  const api401 = await fetch(`${srv.url}/api/getStatus`, { method: 'POST' });
  assert.equal(api401.headers.get('content-security-policy'), CONSOLE_CSP);
});

test('static traversal is refused', async () => {
  for (const p of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/%2e%2e/', '/assets/..%2f..%2f..%2fetc/passwd', '/..\\..\\etc\\passwd', '/%00']) {
    const r = await rawGet(srv.port, p);
    assert.ok(r.status === 400 || r.status === 404, `${p} -> ${r.status}`);
    assert.doesNotMatch(r.body, /root:/);
  }
});

test('requests for another Host name are refused (DNS rebinding)', async () => {
  const r = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path: '/', headers: { Host: 'evil.example' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(r, 421);
});

test('503 with a one-line hint when the renderer is not built', async () => {
  const res = await fetch(`${unbuilt.url}/`);
  assert.equal(res.status, 503);
  assert.equal((await res.text()).trim(), 'web console not built: run npm run build');
  // The API still works without the static bundle.
  const api = await fetch(`${unbuilt.url}/api/getStatus`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(api.status, 200);
});

test('an SSE client that stops reading is cut once 8 MiB wait for it (not queued for ever); one that reads keeps its stream', async () => {
  const { SSE_MAX_QUEUED_BYTES } = await import('../../main/console/server');
  const port = Number(new URL(srv.url).port);
  // A raw client that sends the request and never reads a byte.
  const stalled = createConnection({ host: '127.0.0.1', port });
  stalled.pause();
  let stalledClosed = false;
  stalled.on('close', () => { stalledClosed = true; });
  stalled.on('error', () => {});
  stalled.write(`GET /api/events?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  // A browser-like client that reads everything.
  const ac = new AbortController();
  const reading = await fetch(`${srv.url}/api/events?token=${TOKEN}`, { signal: ac.signal });
  let readBytes = 0;
  const drain = (async () => {
    const reader = reading.body!.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        readBytes += value.length;
      }
    } catch { /* aborted */ }
  })();
  for (let i = 0; i < 100 && api.listenerCount < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(api.listenerCount, 2);
  // Review-sized events (a big diff each): well past the limit in all.
  const big = { type: 'status', status: { pad: 'x'.repeat(256 * 1024) } } as unknown as Parameters<FixtureApi['emit']>[0];
  const eventBytes = Buffer.byteLength(`data: ${JSON.stringify(big)}\n\n`);
  const total = 3 * SSE_MAX_QUEUED_BYTES;
  const before = readBytes;
  for (let sent = 0; sent < total; sent += eventBytes) {
    api.emit(big);
    // The reading client keeps up (bounded wait): only the other one falls behind.
    for (let i = 0; i < 500 && readBytes - before < sent + eventBytes; i++) await new Promise((r) => setTimeout(r, 2));
  }
  for (let i = 0; i < 200 && api.listenerCount > 1; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(api.listenerCount, 1, 'the stream of the client that does not read was cut and unsubscribed');
  stalled.resume(); // reads what was sent before the cut, then its end
  for (let i = 0; i < 300 && !stalledClosed; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(stalledClosed, 'its connection is closed');
  assert.ok(readBytes - before >= total, `the reading client got everything (${readBytes - before} of ${total} bytes)`);
  ac.abort();
  await drain;
  stalled.destroy();
});

test('a chunked API body over 1 MiB gets its 413 answer, then the connection closes', async () => {
  const port = Number(new URL(srv.url).port);
  const sock = createConnection({ host: '127.0.0.1', port });
  let answer = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => { answer += d; });
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  sock.write(`POST /api/getStatus HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  for (let i = 0; i < 20 && !answer; i++) {
    sock.write(`${chunk.length.toString(16)}\r\n`);
    sock.write(chunk);
    sock.write('\r\n');
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000))]);
  assert.match(answer, /^HTTP\/1\.1 413 /, `got: ${JSON.stringify(answer.slice(0, 80))}`);
  assert.match(answer, /Request body larger than 1 MiB/);
  sock.destroy();
});

test('a decision through the console records its channel: the CLI names itself, anything else is the web console (a body cannot choose)', async () => {
  const added = api.addPendingReview({ agent: 'via-agent' });
  const res = await call('approveReview', { id: added.id, via: 'desktop' });
  assert.equal(res.status, 200);
  assert.deepEqual(api.calls.at(-1), { method: 'approveReview', arg: { id: added.id, via: 'web console' } });
  const other = api.addPendingReview({ agent: 'via-agent' });
  const viaCli = await call('denyReview', { id: other.id, reason: 'no' }, { 'X-Airlock-Client': 'cli' });
  assert.equal(viaCli.status, 200);
  assert.deepEqual(api.calls.at(-1), { method: 'denyReview', arg: { id: other.id, reason: 'no', via: 'cli' } });
  // An export records its channel the same way.
  assert.equal((await call('exportHar', { sessionId: 's', via: 'cli' })).status, 200);
  assert.deepEqual(api.calls.at(-1), { method: 'exportHar', arg: { sessionId: 's', via: 'web console' } });
  // A null body is an empty query, stamped all the same.
  assert.equal((await call('exportHar', null)).status, 200);
  assert.deepEqual(api.calls.at(-1), { method: 'exportHar', arg: { via: 'web console' } });
});
