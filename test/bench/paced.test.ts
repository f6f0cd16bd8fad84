// The bench's steady-load phase measures what it says: requests at the scheduled rate, and when the
// server falls behind, the wait counts (no coordinated omission). Real HTTPS server on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { directFactory, pacedPhase, percentiles } from '../../bench/load';
import { createTestPki, type TestPki } from '../helpers/test-ca';

let pki: TestPki;
let server: Server;
let origin = '';
let delayMs = 0;
const body = Buffer.alloc(1024, 120);

before(async () => {
  pki = await createTestPki();
  server = createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (_req, res) => {
    const send = (): void => { res.writeHead(200, { 'content-length': body.length }); res.end(body); };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

test('a fast server: every scheduled request in the window completes, at the service time', async () => {
  delayMs = 0;
  let probe = 0;
  const r = await pacedPhase(directFactory(pki.caPem), origin, 4, 400, 250, 1000, { counter: () => ++probe });
  assert.equal(r.errors, 0);
  assert.ok(r.completed200 >= 396 && r.completed200 <= 400, `${r.completed200} of the 400 due in the window`);
  assert.equal(r.samplesMs.length, r.completed200);
  const p = percentiles(r.samplesMs);
  assert.ok(p.p50Ms > 0 && p.p50Ms < 50, `p50 ${p.p50Ms} ms`); // ~1 ms here; a wide bound for a loaded CI machine
  assert.equal(r.cpuSeconds.counter, 1, 'probed once at the window start and once at its end');
});

test('a server slower than the schedule: the time a request waited for its connection counts', async () => {
  // 2 connections, 100 req/s (one every 20 ms per connection), each answer 40 ms: the backlog grows by
  // ~20 ms per request, so late requests are ~hundreds of ms behind. Timing only from the send would show ~40 ms.
  delayMs = 40;
  const r = await pacedPhase(directFactory(pki.caPem), origin, 2, 100, 0, 1000);
  delayMs = 0;
  assert.equal(r.errors, 0);
  const p = percentiles(r.samplesMs);
  const max = Math.max(...r.samplesMs);
  assert.ok(p.p50Ms > 100, `p50 ${p.p50Ms} ms includes the wait`);
  assert.ok(max > 500, `the last requests waited for the backlog: max ${max} ms`);
  assert.ok(Math.min(...r.samplesMs) >= 39, 'no sample is shorter than the server takes');
});
