import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { get as httpsGet, request as httpsRequest } from 'node:https';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import { createTestPki, type TestPki } from '../helpers/test-ca';
import { startUpstream, startRawTcpServer, expectedBytes, sha256Hex, type Upstream } from '../helpers/https-upstream';
import { runCommand } from '../helpers/run';

let pki: TestPki;
let good: Upstream;
let bad: Upstream;
let plain: Upstream;

before(async () => {
  pki = await createTestPki();
  [good, bad, plain] = await Promise.all([
    startUpstream({ pki }), startUpstream({ tls: 'bad' }), startUpstream({ tls: false }),
  ]);
});
after(async () => {
  await Promise.all([good?.close(), bad?.close(), plain?.close()]);
});

function fetchBuf(url: string, ca?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; chunks: number[] }> {
  return new Promise((resolve, reject) => {
    const cb = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = []; const times: number[] = [];
      res.on('data', (c: Buffer) => { chunks.push(c); times.push(Date.now()); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), chunks: times }));
      res.on('error', reject);
    };
    const req = url.startsWith('https:') ? httpsGet(url, { ca }, cb) : httpGet(url, cb);
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

test('createTestPki is cached per process', async () => {
  assert.equal(await createTestPki(), pki);
  assert.match(pki.caPem, /BEGIN CERTIFICATE/);
  assert.match(pki.serverKeyPem, /BEGIN PRIVATE KEY/);
});

test('curl --cacert gets /hello from the good upstream (127.0.0.1 and localhost)', async () => {
  const r = await runCommand('curl', ['-sS', '--noproxy', '*', '--cacert', pki.caPath, `${good.url}/hello`], { timeoutMs: 15_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello');
  const r2 = await runCommand('curl', ['-sS', '--noproxy', '*', '--cacert', pki.caPath, `https://localhost:${good.port}/hello`,
    '--resolve', `localhost:${good.port}:127.0.0.1`], { timeoutMs: 15_000 });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(good.requests.filter((q) => q.url === '/hello').length, 2);
});

test('curl fails against tls:bad even with the test CA, and without any CA', async () => {
  const r = await runCommand('curl', ['-sS', '--noproxy', '*', '--cacert', pki.caPath, `${bad.url}/hello`], { timeoutMs: 15_000 });
  assert.notEqual(r.code, 0);
  const r2 = await runCommand('curl', ['-sS', '--noproxy', '*', `${bad.url}/hello`], { timeoutMs: 15_000 });
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, /certificate/i);
});

test('https.get with the CA receives 3 SSE events spread over time', async () => {
  const t0 = Date.now();
  const r = await fetchBuf(`${good.url}/sse`, pki.caPem);
  assert.ok(Date.now() - t0 >= 90, 'the stream lasts at least 2 x 50 ms');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /text\/event-stream/);
  const events = r.body.toString().split('\n\n').filter(Boolean);
  assert.equal(events.length, 3);
  assert.match(events[2]!, /data: event 3/);
  assert.ok(r.chunks.length >= 2, 'events arrive in separate chunks');
});

test('bytes, echo, headers, chunked, status, echo-auth, 404', async () => {
  const b = await fetchBuf(`${good.url}/bytes?n=300000`, pki.caPem);
  assert.equal(b.headers['content-length'], '300000');
  assert.ok(b.body.equals(expectedBytes(300000)));

  const payload = Buffer.from('{"a":1}');
  const echoed = await new Promise<{ body: Buffer; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = httpsRequest(`${good.url}/echo`, { method: 'POST', ca: pki.caPem, headers: { 'content-type': 'application/json' } }, (res) => {
      const c: Buffer[] = []; res.on('data', (x: Buffer) => c.push(x)); res.on('end', () => resolve({ body: Buffer.concat(c), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(payload);
  });
  assert.deepEqual(echoed.body, payload);
  assert.equal(echoed.headers['content-type'], 'application/json');
  assert.equal(echoed.headers['x-body-sha256'], sha256Hex(payload));
  assert.deepEqual(good.requests.find((q) => q.url === '/echo')?.body, payload);

  const h = await runCommand('curl', ['-sS', '--noproxy', '*', '--cacert', pki.caPath, '-H', 'X-Test: yes', `${good.url}/headers`]);
  assert.equal(JSON.parse(h.stdout)['x-test'], 'yes');

  const c = await fetchBuf(`${plain.url}/chunked`);
  assert.equal(c.headers['transfer-encoding'], 'chunked');
  assert.equal(c.body.toString(), 'chunk-1\nchunk-2\nchunk-3\n');

  assert.equal((await fetchBuf(`${plain.url}/status/503`)).status, 503);
  assert.equal((await fetchBuf(`${plain.url}/nope`)).status, 404);

  const a = await runCommand('curl', ['-sS', '--noproxy', '*', '-u', 'alice:s3cret', `${plain.url}/echo-auth`]);
  assert.ok(a.stdout.includes(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`));
});

test('/slow waits', async () => {
  const t = Date.now();
  const r = await fetchBuf(`${plain.url}/slow?ms=150`);
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t >= 140);
});

test('WebSocket echo over wss with the test CA', async () => {
  const WebSocket = createRequire(import.meta.url)('ws') as new (u: string, o: object) => {
    on(ev: string, fn: (...a: any[]) => void): void; send(d: string): void; close(): void;
  };
  const ws = new WebSocket(good.wsUrl, { ca: pki.caPem });
  const got = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('ws timeout')), 10_000);
    ws.on('open', () => ws.send('ping-123'));
    ws.on('message', (d: Buffer) => { clearTimeout(t); resolve(d.toString()); });
    ws.on('error', (e: Error) => { clearTimeout(t); reject(e); });
  });
  assert.equal(got, 'ping-123');
  ws.close();
});

test('close() does not hang on an open, idle connection', async () => {
  const u = await startUpstream({ tls: false });
  const s = connect(u.port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.on('error', () => {});
  const t = Date.now();
  await u.close();
  assert.ok(Date.now() - t < 2000);
  s.destroy();
});

test('raw TCP servers misbehave as asked', async () => {
  for (const b of ['reset', 'hang', 'garbage', 'close'] as const) {
    const srv = await startRawTcpServer(b);
    const r = await runCommand('curl', ['-sS', '--noproxy', '*', '-m', '1', `${srv.url}/x`], { timeoutMs: 10_000 });
    assert.notEqual(r.code, 0, b);
    if (b === 'reset') assert.match(r.stderr, /reset|recv failure/i);
    if (b === 'hang') assert.equal(r.code, 28); // curl timeout
    await srv.close();
  }
});
