// The gateway, in process, against real upstream servers and real clients (curl, Node, undici, ws).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import https from 'node:https';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { ProxyAgent, request as undiciRequest } from 'undici';
import type WebSocketType from 'ws';
import {
  createTestPki, expectedBytes, freePort, sha256Hex, startRawTcpServer, startUpstream,
  type RawTcpServer, type TestPki, type Upstream,
} from '../helpers';
import { AIRLOCK_BIN, cleanCliEnv, spawnServe, startTestAirlock, type ServeProcess, type TestAirlock } from '../helpers/airlock';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { createLogger } from '../../main/log';
import { parseAuthority } from '../../main/gateway/proxy';
import { sqlite } from '../../main/store/sqlite';
import {
  connect, curlVia, openTunnel, rawExchange, readResponse, requestOver, tlsTunnel, viaProxy, wsEchoOver, type CurlTarget,
} from './client';

const Database = sqlite();

const require = createRequire(import.meta.url);
const WebSocket = require('ws') as typeof WebSocketType;

let pki: TestPki;
let gw: TestAirlock; // trusts the test PKI upstream; default timeouts
let strict: TestAirlock; // trusts only system roots upstream; short timeouts
let up: Upstream;
let plain: Upstream;
let bad: Upstream;
let reset: RawTcpServer;
let hang: RawTcpServer;
let garbage: RawTcpServer;
let token: string;
let strictToken: string;
let auth: string; // Basic agent:token for gw
let strictAuth: string;
let caPem: string;
let strictCaPem: string;
let g: CurlTarget;
let s: CurlTarget;

before(async () => {
  pki = await createTestPki();
  [up, plain, bad, reset, hang, garbage] = await Promise.all([
    startUpstream({ pki }), startUpstream({ pki, tls: false }), startUpstream({ pki, tls: 'bad' }),
    startRawTcpServer('reset'), startRawTcpServer('hang'), startRawTcpServer('garbage'),
  ]);
  [gw, strict] = await Promise.all([
    startTestAirlock({ upstreamCa: [pki.caPath] }),
    startTestAirlock({
      options: { clientHeadersTimeoutMs: 500, clientTlsTimeoutMs: 1000, upstreamTimeoutMs: 500, connectTimeoutMs: 2000 },
    }),
  ]);
  token = await gw.addAgent('agent');
  strictToken = await strict.addAgent('agent');
  auth = gw.basic('agent', token);
  strictAuth = strict.basic('agent', strictToken);
  caPem = readFileSync(gw.caPath, 'utf8');
  strictCaPem = readFileSync(strict.caPath, 'utf8');
  g = { proxyUrl: gw.proxyUrl, caPath: gw.caPath, user: 'agent', token };
  s = { proxyUrl: strict.proxyUrl, caPath: strict.caPath, user: 'agent', token: strictToken };
});

after(async () => {
  await Promise.all([gw?.close(), strict?.close()]);
  await Promise.all([up?.close(), plain?.close(), bad?.close(), reset?.close(), hang?.close(), garbage?.close()]);
});

/** The gateway still serves a normal request after something bad happened. */
async function stillWorks(which: 'gw' | 'strict' = 'gw'): Promise<void> {
  const target = which === 'gw' ? g : s;
  const r = await curlVia(target, [`${plain.url}/hello`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello');
  if (which === 'gw') {
    const t = await curlVia(g, [`${up.url}/hello`]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, 'hello');
  }
}

/** curl printing the body then, on the last line, the status code. */
async function curlStatus(target: CurlTarget, args: string[]): Promise<{ status: number; body: string; stderr: string }> {
  const r = await curlVia(target, ['-w', '\n%{http_code}', ...args]);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i), stderr: r.stderr };
}

function plainGet(upstream: { port: number }, path: string, extra = ''): string {
  return `GET http://127.0.0.1:${upstream.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n${extra}\r\n`;
}

describe('traffic through the gateway', () => {
  test('curl GET over HTTPS (CONNECT, Airlock leaf, verified upstream)', async () => {
    const r = await curlVia(g, [`${up.url}/hello`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello');
    assert.equal(up.requests.at(-1)?.url, '/hello');
  });

  test('curl GET to a plain http:// upstream (absolute-form request)', async () => {
    const r = await curlVia(g, [`${plain.url}/hello`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello');
  });

  test('curl with a plain http:// URL through a CONNECT tunnel (--proxytunnel)', async () => {
    const r = await curlVia(g, ['-p', `${plain.url}/hello?tunnelled`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello');
    assert.ok(plain.requests.some((q) => q.url === '/hello?tunnelled'));
  });

  test('POST /echo: the body arrives intact (sha256 header equals the local hash)', async () => {
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
    const r = await viaProxy(gw.proxyPort, auth, caPem, { host: '127.0.0.1', port: up.port }, '/echo', {
      method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-body-sha256'], sha256Hex(body));
    assert.ok(r.body.equals(body));
  });

  test('POST /echo with curl --data-binary', async () => {
    const r = await curlVia(g, ['-D', '-', '-o', '/dev/null', '--data-binary', 'airlock body ✓', `${up.url}/echo`]);
    assert.equal(r.code, 0, r.stderr);
    const m = /x-body-sha256: ([0-9a-f]{64})/i.exec(r.stdout);
    assert.equal(m?.[1], sha256Hex('airlock body ✓'));
  });

  test('an informational 103 before the response: the final response arrives, the hints too over https', async () => {
    const r = await curlVia(g, ['-v', `${up.url}/early-hints`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'after hints');
    assert.match(r.stderr, /< HTTP\/1\.1 103 Early Hints\r?\n< link: <\/style\.css>; rel=preload; as=style/i);
    const p = await curlVia(g, [`${plain.url}/early-hints`]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout, 'after hints');
    await stillWorks();
  });

  test('a trailer after a chunked body reaches the client (https relay and plain http)', async () => {
    for (const target of [up, plain]) {
      const r = await curlVia(g, ['-i', '--raw', `${target.url}/trailers`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^trailer: x-checksum\r$/im);
      // curl --raw shows the chunked framing: the last chunk, then the trailer field.
      assert.match(r.stdout, new RegExp(`\\r\\n0\\r\\nx-checksum: ${sha256Hex('body with a trailer\n')}\\r\\n\\r\\n$`), r.stdout);
    }
  });

  test('a header the upstream names in Connection stays on its hop; the others reach the client', async () => {
    for (const target of [up, plain]) {
      const r = await curlVia(g, ['-i', `${target.url}/connection-named`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^x-end-to-end: kept\r$/im);
      assert.doesNotMatch(r.stdout, /x-hop-only/i);
    }
  });

  test('ALPN: an HTTP/1.0 client (curl -0 offers only http/1.0) is served; a client that offers only h2 is refused in the handshake', async () => {
    const r = await curlVia(g, ['-0', '-i', `${up.url}/hello?alpn10`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\r\n\r\nhello$/);
    const t = await openTunnel(gw.proxyPort, `127.0.0.1:${up.port}`, auth);
    assert.equal(t.status, 200);
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const s = tls.connect({ socket: t.socket, ca: caPem, ALPNProtocols: ['h2'] });
      s.once('secureConnect', () => { s.destroy(); resolve(null); });
      s.once('error', (e) => resolve(e));
    });
    t.socket.destroy();
    assert.equal(err?.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    await stillWorks();
  });

  test('5 MB download keeps every byte', async () => {
    const n = 5 * 1024 * 1024;
    const r = await curlVia(g, [`${up.url}/bytes?n=${n}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdoutBuffer.length, n);
    assert.equal(sha256Hex(r.stdoutBuffer), sha256Hex(expectedBytes(n)));
  });

  test('chunked response', async () => {
    const r = await curlVia(g, ['-D', '-', `${up.url}/chunked`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /transfer-encoding: chunked/i);
    assert.ok(r.stdout.endsWith('chunk-1\nchunk-2\nchunk-3\n'), r.stdout);
  });

  test('SSE: 3 events arrive, the first before the stream ends (not buffered)', async () => {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    try {
      const chunks: Array<{ at: number; text: string }> = [];
      await new Promise<void>((resolve, reject) => {
        const req = https.request({
          createConnection: () => sock, path: '/sse', headers: { host: `127.0.0.1:${up.port}`, accept: 'text/event-stream' },
        } as https.RequestOptions, (res) => {
          assert.equal(res.statusCode, 200);
          assert.match(String(res.headers['content-type']), /text\/event-stream/);
          res.setEncoding('utf8');
          res.on('data', (c: string) => chunks.push({ at: Date.now(), text: c }));
          res.on('end', () => resolve());
          res.on('error', reject);
        });
        const t = setTimeout(() => req.destroy(new Error('SSE timed out')), 10_000);
        req.on('close', () => clearTimeout(t));
        req.on('error', reject);
        req.end();
      });
      const all = chunks.map((c) => c.text).join('');
      assert.equal((all.match(/^data: event \d$/gm) ?? []).length, 3, all);
      assert.match(chunks[0]!.text, /data: event 1/);
      assert.doesNotMatch(chunks[0]!.text, /data: event 3/, 'the first read held every event: the stream was buffered');
    } finally {
      sock.destroy();
    }
  });

  test('WebSocket (wss://) echo through a CONNECT tunnel', async () => {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    const ws = new WebSocket(up.wsUrl, { createConnection: () => sock } as WebSocketType.ClientOptions);
    try {
      const got = await new Promise<string[]>((resolve, reject) => {
        const msgs: string[] = [];
        const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10_000);
        ws.on('open', () => { ws.send('hello ws'); ws.send(Buffer.from([1, 2, 3]), { binary: true }); });
        ws.on('message', (d: Buffer, isBinary: boolean) => {
          msgs.push(isBinary ? `bin:${[...d].join(',')}` : d.toString());
          if (msgs.length === 2) { clearTimeout(t); resolve(msgs); }
        });
        ws.on('error', (e) => { clearTimeout(t); reject(e); });
      });
      assert.deepEqual(got, ['hello ws', 'bin:1,2,3']);
      assert.ok(up.requests.some((q) => q.url === '/ws' && !('proxy-authorization' in q.headers)));
    } finally {
      ws.terminate();
      sock.destroy();
    }
  });

  test('WebSocket (ws://) echo through a CONNECT tunnel to a plain upstream', async () => {
    const t = await openTunnel(gw.proxyPort, `127.0.0.1:${plain.port}`, auth);
    assert.equal(t.status, 200);
    t.socket.resume();
    try {
      assert.equal(await wsEchoOver(t.socket, plain.wsUrl, 'plain ws'), 'plain ws');
    } finally {
      t.socket.destroy();
    }
  });

  test('WebSocket (ws://) echo with an absolute-form upgrade request (no tunnel)', async () => {
    const sock = await connect(gw.proxyPort);
    try {
      const head = readResponse(sock, 5_000);
      sock.write(`GET ws://127.0.0.1:${plain.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nProxy-Authorization: ${auth}\r\n\r\n`);
      const r = await head;
      assert.equal(r.status, 101, r.raw);
      assert.equal(r.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      // One masked text frame "abc"; the echo comes back unmasked.
      const payload = Buffer.from('abc');
      const mask = Buffer.from([1, 2, 3, 4]);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
      const echoed = new Promise<Buffer>((resolve, reject) => {
        let buf = Buffer.from(r.body);
        const timer = setTimeout(() => reject(new Error('no echo frame within 5 s')), 5_000);
        const check = () => {
          if (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) { clearTimeout(timer); sock.off('data', onData); resolve(buf); }
        };
        const onData = (c: Buffer) => { buf = Buffer.concat([buf, c]); check(); };
        sock.on('data', onData);
        check();
      });
      sock.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      const frame = await echoed;
      assert.equal(frame[0], 0x81);
      assert.equal(frame.subarray(2, 2 + (frame[1]! & 0x7f)).toString(), 'abc');
    } finally {
      sock.destroy();
    }
  });

  test('a WebSocket is an exchange: policy decides it, and it is recorded with its messages, bytes and 101', async () => {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    const ws = new WebSocket(`${up.wsUrl}?recorded=1`, { createConnection: () => sock } as WebSocketType.ClientOptions);
    try {
      await new Promise<void>((resolve, reject) => {
        let n = 0;
        const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10_000);
        ws.on('open', () => { ws.send('{"jsonrpc":"2.0","method":"ping"}'); ws.send(Buffer.from([1, 2, 3]), { binary: true }); });
        ws.on('message', () => { if (++n === 2) { clearTimeout(t); resolve(); } });
        ws.on('error', (e) => { clearTimeout(t); reject(e); });
      });
      await new Promise<void>((resolve) => { ws.once('close', () => resolve()); ws.close(1000, 'done'); });
    } finally {
      ws.terminate();
      sock.destroy();
    }
    let rec: ReturnType<typeof gw.service.store.exchanges.get> = null;
    for (let i = 0; i < 100 && !rec; i++) {
      const v = gw.service.store.exchanges.list({ limit: 200 }).find((e) => e.path === '/ws?recorded=1' && e.endedAt !== null);
      if (v) rec = gw.service.store.exchanges.get(v.id);
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(rec, 'the WebSocket was not recorded');
    assert.equal(rec.status, 101);
    assert.equal(rec.agent, 'agent');
    assert.equal(rec.verdict, 'allow');
    assert.ok(rec.sessionId);
    assert.equal(rec.requestBytes, 33 + 3, 'message bytes the agent sent');
    assert.equal(rec.responseBytes, 33 + 3, 'message bytes the upstream sent');
    // The messages one per line; the hash is of the payloads as they were sent.
    const msg = '{"jsonrpc":"2.0","method":"ping"}';
    assert.deepEqual(rec.requestBody, Buffer.concat([Buffer.from(`${msg}\n`), Buffer.from([1, 2, 3, 10])]));
    assert.deepEqual(rec.responseBody, rec.requestBody, 'the echo');
    assert.equal(rec.requestBodySha256, sha256Hex(Buffer.concat([Buffer.from(msg), Buffer.from([1, 2, 3])])));
    assert.equal(rec.requestBodyComplete, true);

    // Policy applies to upgrades too: Airlock's own console is refused to agents (builtin:deny-airlock-itself).
    const consolePort = Number(new URL(gw.consoleUrl!).port);
    const raw = await connect(gw.proxyPort);
    try {
      const head = readResponse(raw, 5_000);
      raw.write(`GET ws://127.0.0.1:${consolePort}/api/events HTTP/1.1\r\nHost: 127.0.0.1:${consolePort}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nProxy-Authorization: ${auth}\r\n\r\n`);
      const r = await head;
      assert.equal(r.status, 403, r.raw);
      assert.match(r.body.toString(), /Airlock denied this request/);
    } finally {
      raw.destroy();
    }
    await stillWorks();
  });

  /** Opens wss:// to `bad` through the tunnel and reports what the client saw within `ms`. */
  async function wsToBadUpstream(ms: number): Promise<{ outcome: string; afterMs: number }> {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', bad.port, auth, caPem);
    const ws = new WebSocket(bad.wsUrl, { createConnection: () => sock } as WebSocketType.ClientOptions);
    const started = Date.now();
    try {
      const outcome = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => resolve('still open'), ms);
        const done = (o: string) => { clearTimeout(timer); resolve(o); };
        ws.on('open', () => ws.send('should not echo'));
        ws.on('message', () => done('echoed'));
        ws.on('unexpected-response', (_req, res) => done(`refused ${res.statusCode}`));
        ws.on('close', (code) => done(`closed ${code}`));
        ws.on('error', (e) => done(`error ${e.message}`));
      });
      return { outcome, afterMs: Date.now() - started };
    } finally {
      ws.terminate();
      sock.destroy();
    }
  }

  test('WebSocket to an upstream with an unverifiable certificate: nothing is relayed, nothing reaches it', async () => {
    const before = bad.requests.length;
    const { outcome } = await wsToBadUpstream(1_000);
    assert.notEqual(outcome, 'echoed');
    assert.equal(bad.requests.length, before, 'the upgrade reached an upstream whose certificate cannot be verified');
  });

  test('WebSocket to an upstream with an unverifiable certificate: the client learns it within 5 s', async () => {
    const { outcome } = await wsToBadUpstream(5_000);
    assert.notEqual(outcome, 'still open', 'the client WebSocket is still open 5 s after the upstream failed');
    // The record says why: the upstream's certificate failed verification.
    let rec: ReturnType<typeof gw.service.store.exchanges.list>[number] | undefined;
    for (let i = 0; i < 100 && !rec; i++) {
      rec = gw.service.store.exchanges.list({ limit: 200 }).find((e) => e.port === bad.port && e.path === '/ws' && e.endedAt !== null);
      if (!rec) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(rec, 'the failed WebSocket was not recorded');
    assert.match(rec.error ?? '', /upstream WebSocket failed: .*(certificate|self.signed|verify)/i);
  });

  test('Proxy-Authorization is never forwarded upstream', async () => {
    const r = await curlVia(g, [`${plain.url}/headers`]);
    assert.equal(r.code, 0, r.stderr);
    const h = JSON.parse(r.stdout) as Record<string, string>;
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h['proxy-connection'], undefined);
    const t = await curlVia(g, ['-H', 'Proxy-Authorization: Basic c25lYWt5OnRva2Vu', `${up.url}/headers`]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal((JSON.parse(t.stdout) as Record<string, string>)['proxy-authorization'], undefined);
  });

  test('exchanges are recorded with the agent name', async () => {
    await curlVia(g, [`${up.url}/hello?recorded`]);
    const deadline = Date.now() + 5_000;
    let found = false;
    while (!found && Date.now() < deadline) {
      found = gw.service.store.exchanges.list({ limit: 200 }).some((e) => e.path === '/hello?recorded' && e.agent === 'agent' && e.status === 200);
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(found, 'no recorded exchange for /hello?recorded');
  });

  test("an API key in the query (Gemini's ?key=) reaches upstream but neither the record nor the live view", async () => {
    const live: string[] = [];
    const off = gw.service.subscribe((e) => { if (e.type === 'exchange') live.push(e.exchange.path); });
    try {
      const r = await curlVia(g, [`${up.url}/hello?key=AIzaLIVEsecret123&alt=json`]);
      assert.equal(r.stdout, 'hello');
      assert.ok(up.requests.some((q) => q.url === '/hello?key=AIzaLIVEsecret123&alt=json'), 'forwarded as sent');
      const deadline = Date.now() + 5_000;
      while (!live.includes('/hello?key=[masked]&alt=json') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.ok(live.includes('/hello?key=[masked]&alt=json'), live.join(' '));
      assert.ok(!live.some((p) => p.includes('AIzaLIVEsecret123')));
      const rows = gw.service.store.exchanges.list({ limit: 200 }).filter((e) => e.path.startsWith('/hello?key='));
      assert.deepEqual(rows.map((e) => e.path), ['/hello?key=[masked]&alt=json']);
    } finally {
      off();
    }
  });
});

describe('a WebSocket goes where the policy decided', () => {
  const upgrade = (target: string, host: string) => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

  test('an absolute URL to another host inside a tunnel reaches the tunnel\'s target, not that host', async () => {
    const other = await startUpstream({ pki });
    try {
      const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
      try {
        const res = readResponse(sock, 5_000);
        sock.write(upgrade(`wss://127.0.0.1:${other.port}/ws?pinned`, `127.0.0.1:${up.port}`));
        assert.equal((await res).status, 101);
        // Airlock answers the client first, then opens the upstream WebSocket (bounded wait).
        const until = Date.now() + 5_000;
        while (Date.now() < until && !up.requests.some((q) => q.url === '/ws?pinned')) await new Promise((r) => setTimeout(r, 20));
      } finally {
        sock.destroy();
      }
      assert.ok(up.requests.some((q) => q.url === '/ws?pinned'), 'the tunnel\'s target got the upgrade');
      assert.deepEqual(other.requests.map((q) => q.url), [], 'the other host got nothing');
    } finally {
      await other.close();
    }
  });

  test('to a host Airlock holds a credential for: the agent\'s own Authorization is dropped; named by another SNI it is refused (421)', async () => {
    const other = await startUpstream({ pki });
    const authority = `127.0.0.1:${other.port}`;
    await gw.service.credentials.set(authority, 'airlock-stored-ws-token');
    try {
      const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', other.port, auth, caPem);
      try {
        const res = readResponse(sock, 5_000);
        sock.write(upgrade('/ws?cred', authority).replace('\r\n\r\n', '\r\nAuthorization: Bearer AGENT-OWN-TOKEN\r\n\r\n'));
        assert.equal((await res).status, 101);
        const until = Date.now() + 5_000;
        while (Date.now() < until && !other.requests.some((q) => q.url === '/ws?cred')) await new Promise((r) => setTimeout(r, 20));
      } finally {
        sock.destroy();
      }
      const got = other.requests.find((q) => q.url === '/ws?cred');
      assert.ok(got, 'the upgrade reached the host');
      assert.equal(got.headers.authorization, undefined, 'neither the agent\'s Authorization nor Airlock\'s credential');
      const fronted = await tlsTunnel(gw.proxyPort, '127.0.0.1', other.port, auth, caPem, 'localhost');
      try {
        const res = readResponse(fronted, 5_000);
        fronted.write(upgrade('/ws?fronted', authority));
        const r = await res;
        assert.equal(r.status, 421, r.raw);
        assert.match(r.raw, /goes to 127\.0\.0\.1 but names localhost/);
      } finally {
        fronted.destroy();
      }
      assert.equal(other.requests.some((q) => q.url === '/ws?fronted'), false);
      // Any host, credential or not: a tunnel to localhost whose upgrade names x.localhost.
      const named = await tlsTunnel(gw.proxyPort, 'localhost', up.port, auth, caPem);
      try {
        const res = readResponse(named, 5_000);
        named.write(upgrade('/ws?named-other', `x.localhost:${up.port}`));
        const r = await res;
        assert.equal(r.status, 421, r.raw);
        assert.match(r.raw, /goes to localhost but names x\.localhost/);
      } finally {
        named.destroy();
      }
      assert.equal(up.requests.some((q) => q.url === '/ws?named-other'), false);
    } finally {
      await gw.service.credentials.remove(authority);
      await other.close();
    }
  });

  test('a ws:// URL inside a TLS tunnel (scheme and tunnel disagree) does not end `airlock serve`', async () => {
    // A process of its own: the defect this guards against ended the process with an uncaught TypeError.
    const dir = await makeTempDir('airlock-ws-scheme-');
    let srv: ServeProcess | undefined;
    try {
      const added = spawnSync(process.execPath, [AIRLOCK_BIN, 'agent', 'add', 'bot', '--json', '--data-dir', dir], { env: cleanCliEnv(), encoding: 'utf8', timeout: 30_000 });
      assert.equal(added.status, 0, added.stderr);
      const botToken = (JSON.parse(added.stdout) as { token: string }).token;
      const botAuth = `Basic ${Buffer.from(`bot:${botToken}`).toString('base64')}`;
      srv = await spawnServe(dir, ['--proxy-port', '0', '--console-port', '0', '--upstream-ca', pki.caPath]);
      const port = Number(new URL(srv.info.proxyUrl).port);
      const sock = await tlsTunnel(port, '127.0.0.1', up.port, botAuth, readFileSync(srv.info.caPath, 'utf8'));
      try {
        const res = readResponse(sock, 5_000);
        sock.write(upgrade(`ws://127.0.0.1:${up.port}/ws?ws-scheme-disagrees`, `127.0.0.1:${up.port}`));
        await res.catch(() => undefined);
      } finally {
        sock.destroy(); // the client side closes: the close handlers run
      }
      const exited = await Promise.race([srv.exited, new Promise((r) => setTimeout(() => r(null), 2_000))]);
      assert.equal(exited, null, `airlock serve exited: ${JSON.stringify(exited)}\n${srv.stderr().slice(-2000)}`);
      const r = await curlVia({ proxyUrl: srv.info.proxyUrl, caPath: srv.info.caPath, user: 'bot', token: botToken }, [`${plain.url}/hello`]);
      assert.equal(r.stdout, 'hello', r.stderr);
    } finally {
      await srv?.close();
      await removeDir(dir);
    }
  });
});

describe('proxy authentication', () => {
  test('CONNECT without credentials: 407 with Proxy-Authenticate: Basic', async () => {
    const t = await openTunnel(gw.proxyPort, `127.0.0.1:${up.port}`);
    t.socket.destroy();
    assert.equal(t.status, 407);
    assert.match(t.response.headers['proxy-authenticate'] ?? '', /^Basic\b/);
  });

  test('CONNECT with a wrong token or an unknown agent: 407', async () => {
    for (const a of [gw.basic('agent', 'alk_wrong'), gw.basic('nobody', token), 'Bearer abc', 'Basic !!!']) {
      const t = await openTunnel(gw.proxyPort, `127.0.0.1:${up.port}`, a);
      t.socket.destroy();
      assert.equal(t.status, 407, a);
    }
  });

  test('plain http request without credentials / with a wrong token: 407', async () => {
    const r = await rawExchange(gw.proxyPort, plainGet(plain, '/hello?noauth'));
    assert.equal(r.status, 407, r.raw);
    assert.match(r.headers['proxy-authenticate'] ?? '', /^Basic\b/);
    const w = await rawExchange(gw.proxyPort, plainGet(plain, '/hello?noauth', `Proxy-Authorization: ${gw.basic('agent', 'alk_nope')}\r\n`));
    assert.equal(w.status, 407, w.raw);
    const c = await curlStatus({ ...g, token: 'alk_nope' }, [`${plain.url}/hello?noauth`]);
    assert.equal(c.status, 407);
    assert.ok(!plain.requests.some((q) => q.url === '/hello?noauth'), 'an unauthenticated request reached upstream');
  });

  test('absolute-form WebSocket upgrade without credentials: 407', async () => {
    const r = await rawExchange(gw.proxyPort, `GET ws://127.0.0.1:${plain.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.equal(r.status, 407, r.raw);
  });

  test("a removed agent's token stops working (CONNECT and plain http)", async () => {
    const tmpToken = await gw.addAgent('temp-agent');
    const a = gw.basic('temp-agent', tmpToken);
    const ok = await openTunnel(gw.proxyPort, `127.0.0.1:${up.port}`, a);
    ok.socket.destroy();
    assert.equal(ok.status, 200);
    const okPlain = await rawExchange(gw.proxyPort, plainGet(plain, '/hello', `Proxy-Authorization: ${a}\r\n`));
    assert.equal(okPlain.status, 200);
    assert.ok(gw.service.store.agents.remove('temp-agent'));
    gw.service.gateway.options_.auth.invalidate(); // the 5 s success cache
    const no = await openTunnel(gw.proxyPort, `127.0.0.1:${up.port}`, a);
    no.socket.destroy();
    assert.equal(no.status, 407);
    const noPlain = await rawExchange(gw.proxyPort, plainGet(plain, '/hello', `Proxy-Authorization: ${a}\r\n`));
    assert.equal(noPlain.status, 407);
  });

  test("a tunnel opened before its agent was removed stops working: 403 and the connection closed", async () => {
    const tmpToken = await gw.addAgent('temp-tunnel');
    const a = gw.basic('temp-tunnel', tmpToken);
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, a, caPem);
    try {
      const get = (q: string) => {
        const r = readResponse(sock);
        sock.write(`GET /hello?${q} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`);
        return r;
      };
      assert.equal((await get('before-removal')).status, 200);
      assert.ok(gw.service.store.agents.remove('temp-tunnel'));
      gw.service.gateway.options_.auth.invalidate(); // the 5 s success cache
      const res = await get('after-removal');
      assert.equal(res.status, 403, res.raw);
      assert.match(res.body.toString(), /no longer works \(the agent was removed/);
      assert.equal(up.requests.some((q) => q.url === '/hello?after-removal'), false);
      const closed = res.closed || await new Promise<boolean>((r) => { sock.once('close', () => r(true)); setTimeout(() => r(false), 3000).unref(); });
      assert.ok(closed);
    } finally {
      sock.destroy();
    }
  });
});

describe('upstream TLS is always verified', () => {
  test('self-signed upstream: 502 "could not be verified", nothing reaches it', async () => {
    const r = await curlStatus(g, [`${bad.url}/hello`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /could not be verified/);
    assert.equal(bad.requests.length, 0);
    await stillWorks();
  });

  test('upstream signed by a CA that was not passed with --upstream-ca: 502', async () => {
    const r = await curlStatus(s, [`${up.url}/hello?unlisted-ca`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /could not be verified/);
    assert.ok(!up.requests.some((q) => q.url === '/hello?unlisted-ca'));
  });

  test("the system's trust store counts for upstream (a company CA there is trusted; without it, 502)", async () => {
    const dir = await makeTempDir('airlock-system-store-');
    const store = join(dir, 'ca-certificates.crt');
    writeFileSync(store, pki.caPem); // as if the test CA were installed in the OS store
    const [withStore, without] = await Promise.all([
      startTestAirlock({ options: { systemCaFiles: [store], consolePort: null } }),
      startTestAirlock({ options: { systemCaFiles: [], consolePort: null } }),
    ]);
    try {
      const t1 = { proxyUrl: withStore.proxyUrl, caPath: withStore.caPath, user: 'agent', token: await withStore.addAgent('agent') };
      const ok = await curlStatus(t1, [`${up.url}/hello?system-store`]);
      assert.equal(ok.status, 200, ok.body + ok.stderr);
      assert.equal(ok.body, 'hello');
      const t2 = { proxyUrl: without.proxyUrl, caPath: without.caPath, user: 'agent', token: await without.addAgent('agent') };
      const no = await curlStatus(t2, [`${up.url}/hello?no-system-store`]);
      assert.equal(no.status, 502, no.body);
      assert.match(no.body, /could not be verified/);
      assert.ok(!up.requests.some((q) => q.url === '/hello?no-system-store'));
    } finally {
      await Promise.all([withStore.close(), without.close()]);
      await removeDir(dir);
    }
  });

  test('NODE_TLS_REJECT_UNAUTHORIZED is not set', () => {
    assert.equal(process.env.NODE_TLS_REJECT_UNAUTHORIZED, undefined);
    assert.equal(gw.service.gateway.options_.upstream.https.options.rejectUnauthorized, true);
  });
});

describe('bad input gets a clear answer and the gateway keeps working', () => {
  test('malformed request line: 400', async () => {
    const r = await rawExchange(gw.proxyPort, 'GARBAGE\r\n\r\n');
    assert.equal(r.status, 400, r.raw);
    await stillWorks();
  });

  test('non-proxy request (origin-form path): 400', async () => {
    const r = await rawExchange(gw.proxyPort, `GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: ${auth}\r\n\r\n`);
    assert.equal(r.status, 400, r.raw);
  });

  test('CONNECT to a server that answers in plain text, then TLS: 502 "does not speak TLS"', async () => {
    const r = await curlStatus(g, [`https://127.0.0.1:${garbage.port}/hello`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /does not speak TLS/);
    await stillWorks();
  });

  test('CONNECT to a plain HTTP upstream, then TLS: 502', async () => {
    const r = await curlStatus(g, [`https://127.0.0.1:${plain.port}/hello`]);
    assert.equal(r.status, 502, r.stderr);
    await stillWorks();
  });

  test('CONNECT to a plain HTTP upstream that resets on a TLS hello: the 502 mentions TLS', async () => {
    const r = await curlStatus(g, [`https://127.0.0.1:${plain.port}/hello`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /TLS/);
  });

  test('CONNECT, then plain HTTP inside the tunnel: forwarded', async () => {
    const t = await openTunnel(gw.proxyPort, `127.0.0.1:${plain.port}`, auth);
    assert.equal(t.status, 200);
    try {
      const r = await requestOver(t.socket, { path: '/hello?in-tunnel', host: `127.0.0.1:${plain.port}` });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello');
    } finally {
      t.socket.destroy();
    }
  });

  test('CONNECT, then something that is neither TLS nor HTTP: 400', async () => {
    const t = await openTunnel(gw.proxyPort, `127.0.0.1:${plain.port}`, auth);
    assert.equal(t.status, 200);
    t.socket.resume();
    const r = readResponse(t.socket, 5_000);
    t.socket.write('SSH-2.0-OpenSSH_9.0\r\n\r\n');
    const res = await r;
    t.socket.destroy();
    assert.ok(res.status === 400 || (res.closed && res.status === null), res.raw);
    await stillWorks();
  });

  for (const target of ['../../etc:443', '*.example.com:443', 'host:99999', 'example.com', 'exa mple.com:443', '127.0.0.1:0', '[::1:443']) {
    test(`CONNECT to an invalid target ${JSON.stringify(target)}: 400`, async () => {
      const t = await openTunnel(gw.proxyPort, target, auth);
      t.socket.destroy();
      assert.equal(t.status, 400, t.response.raw);
    });
  }

  test('missing Host header on HTTP/1.1 inside a tunnel: 400', async () => {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    try {
      const r = readResponse(sock);
      sock.write('GET /hello?nohost HTTP/1.1\r\n\r\n');
      assert.equal((await r).status, 400);
    } finally {
      sock.destroy();
    }
    assert.ok(!up.requests.some((q) => q.url === '/hello?nohost'));
    await stillWorks();
  });

  test('a Host header without a port (the default, as clients send for :443 and :80) is forwarded; a bad one is 400', async () => {
    // Inside a tunnel (https): `Host: localhost` means localhost:443.
    const sock = await tlsTunnel(gw.proxyPort, 'localhost', up.port, auth, caPem);
    try {
      let r = readResponse(sock);
      sock.write('GET /hello?defaultport-https HTTP/1.1\r\nHost: localhost\r\n\r\n');
      let res = await r;
      assert.equal(res.status, 200, res.raw);
      assert.equal(res.body.toString(), 'hello');
      r = readResponse(sock);
      sock.write('GET /hello?badhost-https HTTP/1.1\r\nHost: local host\r\n\r\n');
      res = await r;
      assert.equal(res.status, 400, res.raw);
      assert.match(res.raw, /invalid Host header "local host"/);
    } finally {
      sock.destroy();
    }
    assert.equal(up.requests.find((q) => q.url === '/hello?defaultport-https')?.headers.host, 'localhost');
    assert.ok(!up.requests.some((q) => q.url === '/hello?badhost-https'));
    // Plain http (absolute form): `Host: 127.0.0.1` means port 80; the target is the request line's.
    const p = await rawExchange(gw.proxyPort, `GET http://127.0.0.1:${plain.port}/hello?defaultport-http HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Proxy-Authorization: ${auth}\r\nConnection: close\r\n\r\n`);
    assert.equal(p.status, 200, p.raw);
    assert.ok(plain.requests.some((q) => q.url === '/hello?defaultport-http'));
    await stillWorks();
  });

  test('Content-Length with Transfer-Encoding: 400 and nothing reaches upstream (tunnel and plain)', async () => {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    try {
      const r = readResponse(sock);
      sock.write(`POST /echo?clte HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
      const res = await r;
      assert.equal(res.status, 400, res.raw);
    } finally {
      sock.destroy();
    }
    const p = await rawExchange(gw.proxyPort, `POST http://127.0.0.1:${plain.port}/echo?clte HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n` +
      `Proxy-Authorization: ${auth}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    assert.equal(p.status, 400, p.raw);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!up.requests.some((q) => q.url.includes('clte')), 'CL+TE request reached the TLS upstream');
    assert.ok(!plain.requests.some((q) => q.url.includes('clte')), 'CL+TE request reached the plain upstream');
    await stillWorks();
  });

  test('two Content-Length headers: 400 that says so; an IPv4 address in brackets is not a CONNECT target', async () => {
    const p = await rawExchange(gw.proxyPort, `POST http://127.0.0.1:${plain.port}/echo?dupcl HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n` +
      `Proxy-Authorization: ${auth}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`);
    assert.equal(p.status, 400, p.raw);
    assert.match(p.body.toString(), /more than one Content-Length/);
    const t = await openTunnel(gw.proxyPort, `[127.0.0.1]:${up.port}`, auth);
    t.socket.destroy();
    assert.equal(t.status, 400, t.response.raw);
    assert.equal(parseAuthority('[127.0.0.1]:443', null), null);
    assert.deepEqual(parseAuthority('[::1]:443', null), { host: '::1', port: 443 });
    await stillWorks();
  });

  test('HTTP/1.0 without Host reaches upstream with the Host the policy decided on (plain, and to a credentialed host)', async () => {
    const p = await rawExchange(gw.proxyPort, `GET http://127.0.0.1:${plain.port}/hello?http10 HTTP/1.0\r\nProxy-Authorization: ${auth}\r\n\r\n`);
    assert.equal(p.status, 200, p.raw);
    assert.equal(plain.requests.find((q) => q.url === '/hello?http10')?.headers.host, `127.0.0.1:${plain.port}`);
  });

  test('one agent with maxUpstreamRequestsPerAgentHost requests open to a host gets 503 for more; another agent is not held up', async (t) => {
    const small = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, maxUpstreamRequestsPerAgentHost: 2 } });
    t.after(() => small.close());
    const ta = await small.addAgent('busy');
    const tb = await small.addAgent('other');
    const via = (user: string, token: string) => new ProxyAgent({ uri: small.proxyUrl, token: small.basic(user, token), requestTls: { ca: readFileSync(small.caPath, 'utf8') } });
    const da = via('busy', ta);
    const db = via('other', tb);
    t.after(() => Promise.all([da.close(), db.close()]));
    const get = async (d: ProxyAgent, path: string) => {
      const r = await undiciRequest(`${up.url}${path}`, { dispatcher: d, headersTimeout: 10_000, bodyTimeout: 10_000 });
      return { status: r.statusCode, body: await r.body.text(), retry: r.headers['retry-after'] };
    };
    const slow = [get(da, '/slow?ms=1500&i=1'), get(da, '/slow?ms=1500&i=2')];
    const until = Date.now() + 5_000;
    while (Date.now() < until && up.requests.filter((q) => q.url.startsWith('/slow?ms=1500&i=')).length < 2) await new Promise((r) => setTimeout(r, 20));
    const third = await get(da, '/hello?third');
    assert.equal(third.status, 503, third.body);
    assert.equal(third.retry, '1');
    assert.match(third.body, /agent busy already has 2 requests open to 127\.0\.0\.1:\d+ \(Airlock's maxUpstreamRequestsPerAgentHost setting\)/);
    assert.equal(up.requests.some((q) => q.url === '/hello?third'), false);
    const others = await get(db, '/hello?other-agent');
    assert.equal(others.status, 200);
    assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200]);
    assert.equal((await get(da, '/hello?after')).status, 200, 'its places are given back when its requests end');
  });

  test('a request naming another host than its tunnel goes to is refused (421, any host); a tunnel to an address is verified against the name the client sent, on both paths', async () => {
    const over = async (sock: tls.TLSSocket, head: string) => {
      const r = readResponse(sock);
      sock.write(head);
      return r;
    };
    // CONNECT localhost, Host x.localhost: a shared front end would route by the Host.
    const fronted = await tlsTunnel(gw.proxyPort, 'localhost', up.port, auth, caPem);
    try {
      const r = await over(fronted, `GET /hello?fronted HTTP/1.1\r\nHost: x.localhost:${up.port}\r\n\r\n`);
      assert.equal(r.status, 421, r.raw);
      assert.match(r.body.toString(), /goes to localhost but names x\.localhost/);
    } finally {
      fronted.destroy();
    }
    assert.equal(up.requests.some((q) => q.url === '/hello?fronted'), false);
    // CONNECT to an address, no SNI, a Host that names something else: the upstream is verified against
    // the address (the test certificate has IP 127.0.0.1), not against the Host header's name.
    const ip = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    try {
      const r = await over(ip, `GET /hello?ip-tunnel HTTP/1.1\r\nHost: nomatch.example:${up.port}\r\n\r\n`);
      assert.equal(r.status, 200, r.raw);
    } finally {
      ip.destroy();
    }
    // With a name in its SNI, that name is what the upstream is verified against (the relay path too).
    const named = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem, 'nomatch.example');
    try {
      const r = await over(named, `GET /hello?ip-sni HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\n`);
      assert.equal(r.status, 502, r.raw);
      assert.match(r.body.toString(), /could not be verified/);
    } finally {
      named.destroy();
    }
    assert.equal(up.requests.some((q) => q.url === '/hello?ip-sni'), false);
  });

  test('an SNI with a trailing dot is the same name (no 421 to a credentialed host)', async () => {
    const other = await startUpstream({ pki });
    await gw.service.credentials.set(`localhost:${other.port}`, 'dot-token-1');
    try {
      const sock = await tlsTunnel(gw.proxyPort, 'localhost', other.port, auth, caPem, 'localhost.');
      try {
        const r = readResponse(sock);
        sock.write(`GET /hello?sni-dot HTTP/1.1\r\nHost: localhost:${other.port}\r\n\r\n`);
        const res = await r;
        assert.equal(res.status, 200, res.raw);
      } finally {
        sock.destroy();
      }
    } finally {
      await gw.service.credentials.remove(`localhost:${other.port}`);
      await other.close();
    }
  });

  test('header flood (300 header lines): 431 (plain and inside a tunnel)', async () => {
    const flood = Array.from({ length: 300 }, (_, i) => `X-Flood-${i}: ${i}\r\n`).join('');
    const p = await rawExchange(gw.proxyPort, plainGet(plain, '/hello?flood', `Proxy-Authorization: ${auth}\r\n${flood}`));
    assert.equal(p.status, 431, p.raw);
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    try {
      const r = readResponse(sock);
      sock.write(`GET /hello?flood HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n${flood}\r\n`);
      assert.equal((await r).status, 431);
    } finally {
      sock.destroy();
    }
    assert.ok(!up.requests.some((q) => q.url === '/hello?flood'));
    assert.ok(!plain.requests.some((q) => q.url === '/hello?flood'));
    await stillWorks();
  });

  const big = `X-Big: ${'a'.repeat(70 * 1024)}\r\n`;
  const large = `X-Large: ${'l'.repeat(40 * 1024)}\r\n`;

  test('oversize header (70 KB, over maxHeaderBytes = 64 KiB): 431 naming the setting', async () => {
    const p = await rawExchange(gw.proxyPort, plainGet(plain, '/hello?big', `Proxy-Authorization: ${auth}\r\n${big}`));
    assert.equal(p.status, 431, p.raw);
    assert.match(p.raw, /headers are larger than 64 KiB \(Airlock's maxHeaderBytes setting\)/);
    assert.ok(!plain.requests.some((q) => q.url === '/hello?big'));
    await stillWorks();
  });

  /** One request written as raw bytes inside a fresh TLS tunnel to the HTTPS upstream; its answer. */
  async function rawInTunnel(head: string) {
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem);
    try {
      const r = readResponse(sock);
      sock.write(head);
      return await r;
    } finally {
      sock.destroy();
    }
  }

  test('oversize header (70 KB) inside a TLS tunnel: 431', async () => {
    const res = await rawInTunnel(`GET /hello?big HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n${big}\r\n`);
    assert.equal(res.status, 431, `got ${res.raw || '(empty reply)'}`);
    assert.ok(!up.requests.some((q) => q.url === '/hello?big'));
  });

  test('a large request header (40 KB, over Node\'s 16 KiB default, under the limit) is forwarded whole (tunnel and plain)', async () => {
    const res = await rawInTunnel(`GET /hello?large HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n${large}\r\n`);
    assert.equal(res.status, 200, res.raw);
    const p = await rawExchange(gw.proxyPort, plainGet(plain, '/hello?large', `Proxy-Authorization: ${auth}\r\n${large}`));
    assert.equal(p.status, 200, p.raw);
    assert.equal(up.requests.find((q) => q.url === '/hello?large')?.headers['x-large'], 'l'.repeat(40 * 1024));
    assert.equal(plain.requests.find((q) => q.url === '/hello?large')?.headers['x-large'], 'l'.repeat(40 * 1024));
  });

  test('a large response header (90 KB) reaches the client; one over upstreamMaxHeaderBytes (300 KB) is a 502 that says so', async () => {
    for (const target of [up, plain]) {
      const ok = await curlVia(g, ['-i', `${target.url}/big-header?n=${90 * 1024}`]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^HTTP\/1\.1 200/m);
      assert.ok(ok.stdout.includes(`x-big: ${'h'.repeat(90 * 1024)}\r\n`), 'the 90 KB header arrived whole (curl takes up to 100 KiB)');
      const over = await curlVia(g, ['-i', `${target.url}/big-header?n=${300 * 1024}`]);
      assert.equal(over.code, 0, over.stderr);
      assert.match(over.stdout, /^HTTP\/1\.1 502/m);
      assert.match(over.stdout, /sent response headers larger than Airlock accepts \(256 KiB, Airlock's upstreamMaxHeaderBytes setting\)/);
    }
    await stillWorks();
  });

  test('agents that hang up right after CONNECT, or during the TLS handshake, are closed at once (not at the TLS timeout)', async () => {
    // Each waits (bounded) for Airlock to close its side; half-open sockets left to clientTlsTimeoutMs
    // (15 s here) would let one agent hold thousands of file descriptors.
    const closedWithin = (sock: net.Socket, ms: number) => new Promise<boolean>((resolve) => {
      if (sock.closed) return resolve(true);
      const t = setTimeout(() => resolve(false), ms);
      sock.once('close', () => { clearTimeout(t); resolve(true); });
    });
    const started = Date.now();
    const after = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const t = await openTunnel(gw.proxyPort, `127.0.0.1:${up.port}`, auth);
      assert.equal(t.status, 200);
      t.socket.resume();
      // Half of them give up before their first byte, half after the first bytes of a ClientHello.
      if (i % 2 === 1) t.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      t.socket.end();
      return closedWithin(t.socket, 3_000);
    }));
    assert.equal(after.filter(Boolean).length, 40, `${after.filter((x) => !x).length} of 40 left open after 3 s`);
    assert.ok(Date.now() - started < 10_000);
    await stillWorks();
  });

  test('connections answered with a refusal and then sent more bytes are closed, not leaked (407 after retries, bad CONNECT port, unauthenticated upgrade)', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const refusals = [
      // four CONNECTs with a wrong token on one connection: the fourth is answered and the connection let go
      Array.from({ length: 4 }, () => `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nProxy-Authorization: ${gw.basic('agent', 'alk_wrong')}\r\n\r\n`).join(''),
      `CONNECT 127.0.0.1:99999 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: ${auth}\r\n\r\n`,
      `GET ws://127.0.0.1:${plain.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    ];
    const once = async (data: string) => {
      const sock = await connect(gw.proxyPort);
      const r = readResponse(sock, 5_000);
      sock.write(data);
      const res = await r;
      assert.ok(res.status === 407 || res.status === 400, res.raw);
      if (!sock.destroyed) sock.end('twenty more bytes....');
      await new Promise<void>((done) => { if (sock.closed) return done(); sock.once('close', () => done()); setTimeout(done, 2000).unref(); });
      sock.destroy();
    };
    await once(refusals[0]!); // warm up (lazily opened files, the leaf cache)
    const before = fds();
    for (let i = 0; i < 10; i++) for (const data of refusals) await once(data);
    let after = fds();
    for (let i = 0; i < 20 && after - before > 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = fds();
    }
    assert.ok(after - before <= 3, `${after - before} file descriptors more after 30 refused connections`);
    await stillWorks();
  });

  test('slow client (half the headers, then silence): 408 or close within 5 s', async () => {
    const sock = await connect(strict.proxyPort);
    const started = Date.now();
    try {
      const r = readResponse(sock, 5_000);
      sock.write(`GET http://127.0.0.1:${plain.port}/hello HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n`);
      const res = await r;
      assert.ok(!res.timedOut, 'connection still open after 5 s');
      assert.ok(res.status === 408 || res.status === null, res.raw);
      assert.ok(Date.now() - started < 5_000);
    } finally {
      sock.destroy();
    }
    await stillWorks('strict');
  });

  test('slow client inside a TLS tunnel: 408 or close within 5 s', async () => {
    const sock = await tlsTunnel(strict.proxyPort, '127.0.0.1', plain.port, strictAuth, strictCaPem);
    try {
      const r = readResponse(sock, 5_000);
      sock.write(`GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n`);
      const res = await r;
      assert.ok(!res.timedOut, 'connection still open after 5 s');
      assert.ok(res.status === 408 || res.status === null, res.raw);
    } finally {
      sock.destroy();
    }
  });

  test('a request body that stops arriving (relayed POST, HTTPS and plain HTTP): 408 after clientBodyIdleTimeoutMs; the gateway keeps serving', async (t) => {
    const quick = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, clientBodyIdleTimeoutMs: 500 } });
    t.after(() => quick.close());
    const tok = await quick.addAgent('agent');
    const quickAuth = quick.basic('agent', tok);
    const before = up.requests.length;
    const plainBefore = plain.requests.length;
    const sock = await tlsTunnel(quick.proxyPort, '127.0.0.1', up.port, quickAuth, readFileSync(quick.caPath, 'utf8'));
    try {
      const r = readResponse(sock, 5_000);
      sock.write(`POST /echo HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":`);
      const res = await r;
      assert.equal(res.timedOut, false);
      assert.equal(res.status, 408, res.raw);
      assert.match(res.body.toString(), /its body stopped arriving \(nothing for 0\.5 s/);
    } finally {
      sock.destroy();
    }
    const plainSock = await connect(quick.proxyPort);
    try {
      const r = readResponse(plainSock, 5_000);
      plainSock.write(`POST http://127.0.0.1:${plain.port}/echo HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\nProxy-Authorization: ${quickAuth}\r\nContent-Length: 1000\r\n\r\nabc`);
      const res = await r;
      assert.equal(res.status, 408, res.raw);
    } finally {
      plainSock.destroy();
    }
    assert.deepEqual(up.requests.slice(before).filter((q) => q.url === '/echo'), [], 'upstream never got a whole request');
    assert.deepEqual(plain.requests.slice(plainBefore).filter((q) => q.url === '/echo'), [], 'upstream never got a whole request');
    const ok = await curlVia({ proxyUrl: quick.proxyUrl, caPath: quick.caPath, user: 'agent', token: tok }, ['--data-binary', 'x'.repeat(5000), `${up.url}/echo`]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('slow client with plain HTTP inside a CONNECT tunnel: 408 or close within 5 s', async () => {
    const t = await openTunnel(strict.proxyPort, `127.0.0.1:${plain.port}`, strictAuth);
    assert.equal(t.status, 200);
    t.socket.resume();
    try {
      const r = readResponse(t.socket, 5_000);
      t.socket.write(`GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${plain.port}\r\n`);
      const res = await r;
      assert.ok(!res.timedOut, 'connection still open after 5 s');
      assert.ok(res.status === 408 || res.status === null, res.raw);
    } finally {
      t.socket.destroy();
    }
  });

  test('CONNECT, then silence: the tunnel is closed after clientTlsTimeoutMs', async () => {
    const t = await openTunnel(strict.proxyPort, `127.0.0.1:${plain.port}`, strictAuth);
    assert.equal(t.status, 200);
    t.socket.resume();
    const res = await readResponse(t.socket, 5_000);
    t.socket.destroy();
    assert.ok(res.closed, 'tunnel still open after 5 s of silence');
  });

  test('CONNECT, then a partial TLS hello: closed after clientTlsTimeoutMs', async () => {
    const t = await openTunnel(strict.proxyPort, `127.0.0.1:${plain.port}`, strictAuth);
    assert.equal(t.status, 200);
    t.socket.resume();
    const r = readResponse(t.socket, 5_000);
    t.socket.write(Buffer.from([0x16, 0x03, 0x01]));
    const res = await r;
    t.socket.destroy();
    assert.ok(res.closed, 'tunnel still open after 5 s with a partial handshake');
    await stillWorks('strict');
  });

  test('upstream refuses the connection: 502 "refused" (http and https)', async () => {
    const port = await freePort();
    const r = await curlStatus(g, [`http://127.0.0.1:${port}/`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /refused/);
    const t = await curlStatus(g, [`https://127.0.0.1:${port}/`]);
    assert.equal(t.status, 502, t.stderr);
    assert.match(t.body, /refused/);
    await stillWorks();
  });

  test('upstream resets the connection: 502', async () => {
    const r = await curlStatus(g, [`${reset.url}/`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /closed the connection/);
    const t = await curlStatus(g, [`https://127.0.0.1:${reset.port}/`]);
    assert.equal(t.status, 502, t.stderr);
    await stillWorks();
  });

  test('upstream hangs: 504 after upstreamTimeoutMs (http and https)', async () => {
    const started = Date.now();
    const r = await curlStatus(s, [`${hang.url}/`]);
    assert.equal(r.status, 504, r.stderr);
    assert.match(r.body, /did not begin its response within 0\.5 s \(Airlock's upstreamTimeoutMs setting\)/);
    const t = await curlStatus(s, [`https://127.0.0.1:${hang.port}/`]); // TLS never completes: the connect timeout
    assert.equal(t.status, 504, t.stderr);
    assert.match(t.body, /could not connect to 127\.0\.0\.1:\d+: the connection timed out/);
    assert.ok(Date.now() - started < 10_000);
    await stillWorks('strict');
  });

  test('upstream answers garbage: 502', async () => {
    const r = await curlStatus(g, [`${garbage.url}/`]);
    assert.equal(r.status, 502, r.stderr);
    assert.match(r.body, /not valid HTTP/);
    await stillWorks();
  });
});

describe('one request in, one request out: a body never becomes a request of its own upstream', () => {
  // A receive-pack POST hidden in the body of a request Airlock allows: were the body forwarded without
  // its framing, the upstream would read it as the next request on the (pooled) connection.
  const hidden = (port: number) => `POST /smuggled/git-receive-pack HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\n\r\n`;
  const chunked = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;

  /** Writes `data`, waits (bounded) until the upstream has seen a request for `path` and a little longer, then closes. */
  async function send(sock: net.Socket | tls.TLSSocket, data: string, upstream: Upstream, path: string): Promise<void> {
    sock.on('error', () => undefined);
    sock.resume();
    sock.write(data);
    const until = Date.now() + 5_000;
    while (Date.now() < until && !upstream.requests.some((q) => q.url === path)) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // time for a second request, were there one
    sock.destroy();
  }

  const cases: Array<{ name: string; tls: boolean; head: (hp: string, path: string) => string; body: (port: number) => string; sent: (port: number) => string }> = [
    { name: 'plain GET with a chunked body', tls: false, head: (hp, p) => `GET http://${hp}${p} HTTP/1.1\r\nHost: ${hp}\r\nProxy-Authorization: AUTH\r\nTransfer-Encoding: chunked\r\n\r\n`, body: (port) => chunked(hidden(port)), sent: hidden },
    { name: 'plain HEAD with a chunked body', tls: false, head: (hp, p) => `HEAD http://${hp}${p} HTTP/1.1\r\nHost: ${hp}\r\nProxy-Authorization: AUTH\r\nTransfer-Encoding: chunked\r\n\r\n`, body: (port) => chunked(hidden(port)), sent: hidden },
    { name: 'plain GET naming Content-Length in Connection', tls: false, head: (hp, p) => `GET http://${hp}${p} HTTP/1.1\r\nHost: ${hp}\r\nProxy-Authorization: AUTH\r\nConnection: keep-alive, content-length\r\nContent-Length: LEN\r\n\r\n`, body: hidden, sent: hidden },
    { name: 'tunnelled GET with a chunked body and Expect (Node client path)', tls: true, head: (hp, p) => `GET ${p} HTTP/1.1\r\nHost: ${hp}\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n`, body: (port) => chunked(hidden(port)), sent: hidden },
    { name: 'tunnelled DELETE naming Content-Length in Connection, with Expect', tls: true, head: (hp, p) => `DELETE ${p} HTTP/1.1\r\nHost: ${hp}\r\nExpect: 100-continue\r\nConnection: content-length\r\nContent-Length: LEN\r\n\r\n`, body: hidden, sent: hidden },
    { name: 'tunnelled GET with a chunked body (undici path)', tls: true, head: (hp, p) => `GET ${p} HTTP/1.1\r\nHost: ${hp}\r\nTransfer-Encoding: chunked\r\n\r\n`, body: (port) => chunked(hidden(port)), sent: hidden },
  ];
  cases.forEach((c, i) => {
    test(c.name, async () => {
      const upstream = c.tls ? up : plain;
      const hp = `127.0.0.1:${upstream.port}`;
      const path = `/hello?framing=${i}`;
      const n0 = upstream.requests.length;
      const sock = c.tls ? await tlsTunnel(gw.proxyPort, '127.0.0.1', upstream.port, auth, caPem) : await connect(gw.proxyPort);
      const body = c.body(upstream.port);
      await send(sock, c.head(hp, path).replace('AUTH', auth).replace('LEN', String(Buffer.byteLength(body))) + body, upstream, path);
      const seen = upstream.requests.slice(n0);
      assert.deepEqual(seen.map((q) => `${q.method} ${q.url}`), [`${c.head(hp, path).split(' ')[0]} ${path}`], 'exactly the request Airlock decided on');
      assert.equal(seen[0]!.body.toString(), c.sent(upstream.port), 'its body arrived as its body');
    });
  });
});

describe('the upstream timeout bounds the wait for a response, not a response that has begun', () => {
  // An event stream (an MCP server's, a build log's) may be quiet for longer than any timeout,
  // and an LLM answer may take minutes to begin: neither may be cut while both ends keep it.
  let quick: TestAirlock;
  let q: CurlTarget;
  before(async () => {
    quick = await startTestAirlock({ upstreamCa: [pki.caPath], options: { upstreamTimeoutMs: 400 } });
    q = { proxyUrl: quick.proxyUrl, caPath: quick.caPath, user: 'agent', token: await quick.addAgent('agent') };
  });
  after(async () => { await quick?.close(); });

  for (const scheme of ['https', 'http'] as const) {
    test(`${scheme}: an event stream quiet for 3x the timeout keeps flowing`, async () => {
      const base = scheme === 'https' ? up.url : plain.url;
      const r = await curlVia(q, ['-N', `${base}/sse?gap=1200`]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.match(/^data: event \d$/gm), ['data: event 1', 'data: event 2', 'data: event 3'], r.stdout);
    });
  }

  test('a response that does not begin within the timeout is still 504, naming the setting', async () => {
    const r = await curlStatus(q, [`${up.url}/slow?ms=1500`]);
    assert.equal(r.status, 504, r.stderr);
    assert.match(r.body, /did not begin its response within 0\.4 s/);
    assert.match(r.body, /upstreamTimeoutMs/);
  });
});

describe('listening sockets', () => {
  function listeners(port: number): string[] {
    const out: string[] = [];
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text = '';
      try { text = readFileSync(f, 'utf8'); } catch { continue; }
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 4 || cols[3] !== '0A') continue; // LISTEN
        const [addr, p] = cols[1]!.split(':');
        if (parseInt(p!, 16) === port) out.push(addr!);
      }
    }
    return out;
  }

  test('the proxy and console listen on loopback only, never on 0.0.0.0 / ::', (t) => {
    const ports = [gw.proxyPort, Number(new URL(gw.consoleUrl!).port)];
    for (const port of ports) {
      const addrs = listeners(port);
      if (addrs.length === 0) return t.skip('/proc/net/tcp shows no listeners here');
      for (const a of addrs) {
        assert.ok(a === '0100007F' || a === '00000000000000000000000001000000', `port ${port} listens on ${a}`);
      }
    }
  });

  test('the proxy is not reachable on a non-loopback address', async (t) => {
    const addr = Object.values(os.networkInterfaces()).flat().find((i) => i && !i.internal && i.family === 'IPv4')?.address;
    if (!addr) return t.skip('this machine has no non-loopback IPv4 address');
    await assert.rejects(connect(gw.proxyPort, addr, 3_000));
  });
});

describe('connections and certificates', () => {
  test('keep-alive: 20 sequential requests through one undici ProxyAgent use at most 2 upstream connections', async () => {
    let connections = 0;
    const server = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (_req, res) => res.end('ok'));
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const dispatcher = new ProxyAgent({ uri: gw.proxyUrl, token: auth, requestTls: { ca: caPem } });
    try {
      for (let i = 0; i < 20; i++) {
        const r = await undiciRequest(`https://127.0.0.1:${port}/n${i}`, { dispatcher });
        assert.equal(r.statusCode, 200);
        assert.equal(await r.body.text(), 'ok');
      }
      assert.ok(connections >= 1 && connections <= 2, `${connections} upstream connections for 20 requests`);
    } finally {
      await dispatcher.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('20 parallel first requests to a new host (localhost) all succeed', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      viaProxy(gw.proxyPort, auth, caPem, { host: 'localhost', port: up.port }, `/hello?p=${i}`)));
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello');
    }
  });

  test('the leaf for an IP target has an IP SAN', async () => {
    const r = await viaProxy(gw.proxyPort, auth, caPem, { host: '127.0.0.1', port: up.port }, '/hello');
    assert.equal(r.status, 200);
    assert.match(r.cert.subjectaltname ?? '', /IP Address:127\.0\.0\.1/);
  });

  test('the leaf for a DNS name has a DNS SAN', async () => {
    const r = await viaProxy(gw.proxyPort, auth, caPem, { host: 'localhost', port: up.port }, '/hello');
    assert.equal(r.status, 200);
    assert.match(r.cert.subjectaltname ?? '', /DNS:localhost/);
    assert.doesNotMatch(r.cert.subjectaltname ?? '', /IP Address/);
    // curl with --connect-to: the URL names localhost, the upstream really is 127.0.0.1.
    const c = await curlVia(g, ['-v', `https://localhost:${up.port}/hello`]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, 'hello');
    assert.match(c.stderr, /subjectAltName: host "localhost" matched/);
  });

  test('a mismatched SNI inside a tunnel gets a leaf for that name (and is still verified upstream)', async () => {
    const sock: tls.TLSSocket = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem, 'localhost');
    try {
      assert.match(sock.getPeerCertificate().subjectaltname ?? '', /DNS:localhost/);
      const r = await requestOver(sock, { path: '/hello?sni', host: `localhost:${up.port}` });
      assert.equal(r.status, 200);
    } finally {
      sock.destroy();
    }
  });
});

describe("Airlock's own ports, reached by a name that resolves to this machine", () => {
  test('a host name resolving to 127.0.0.1 (here the machine\'s own) is refused on the console and proxy ports; other ports work', async (t) => {
    const { lookup } = await import('node:dns/promises');
    const { isLoopbackHost } = await import('../../main/pipeline/stages/decide');
    let name: string | null = null;
    for (const candidate of [os.hostname(), 'vm', 'runsc']) {
      if (isLoopbackHost(candidate)) continue;
      const a = await lookup(candidate).catch(() => null);
      if (a?.address === '127.0.0.1') { name = candidate; break; }
    }
    if (!name) return t.skip('no name other than localhost resolves to 127.0.0.1 in this machine\'s /etc/hosts');
    const consolePort = Number(new URL(gw.consoleUrl!).port);
    const plainToConsole = await curlStatus(g, [`http://${name}:${consolePort}/api/getStatus`]);
    assert.equal(plainToConsole.status, 403, plainToConsole.body);
    assert.match(plainToConsole.body, /Airlock denied this request: .*resolves to this machine.*builtin:deny-airlock-itself/);
    const tlsToConsole = await curlStatus(g, [`https://${name}:${consolePort}/`]);
    assert.equal(tlsToConsole.status, 403, tlsToConsole.body + tlsToConsole.stderr);
    const toProxy = await curlStatus(g, [`http://${name}:${gw.proxyPort}/`]);
    assert.equal(toProxy.status, 403, toProxy.body);
    // The same name on a port that is not Airlock's is an ordinary upstream.
    const ok = await curlStatus(g, [`http://${name}:${plain.port}/hello`]);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.body, 'hello');
  });
});

describe("Airlock's own ports, reached by an IPv6 spelling of 0.0.0.0", () => {
  test('[::ffff:0.0.0.0] and its other spellings are refused on the console port, in plain HTTP and through a tunnel', async () => {
    const consolePort = Number(new URL(gw.consoleUrl!).port);
    for (const host of ['[::ffff:0.0.0.0]', '[::ffff:0:0]', '[0:0:0:0:0:ffff:0:0]', '[::ffff:127.0.0.1]']) {
      const r = await curlStatus(g, [`http://${host}:${consolePort}/api/getStatus`]);
      assert.equal(r.status, 403, `${host}: ${r.body}`);
      assert.match(r.body, /agents cannot reach Airlock's own console or proxy/, host);
      // A tunnel is answered at once; what goes through it is decided request by request.
      const t = await openTunnel(gw.proxyPort, `${host}:${consolePort}`, auth);
      try {
        const inner = await requestOver(t.socket, { path: '/api/getStatus', host: `${host}:${consolePort}` });
        assert.equal(inner.status, 403, `${host} through a tunnel: ${inner.body.toString()}`);
      } finally {
        t.socket.destroy();
      }
    }
  });
});

describe('stored credentials go only to their host', () => {
  test('a request naming another host in its SNI or Host header is refused (421) and never reaches the upstream', async () => {
    const creds = gw.service.credentials;
    await creds.set(`localhost:${up.port}`, 'fronting-s3cret', { username: 'u' });
    await creds.set(`127.0.0.1:${up.port}`, 'fronting-s3cret', { username: 'u' });
    try {
      // Matching names: the credential is injected.
      const ok = await tlsTunnel(gw.proxyPort, 'localhost', up.port, auth, caPem, 'localhost');
      try {
        const r = await requestOver(ok, { path: '/echo-auth?match', host: `localhost:${up.port}` });
        assert.equal(r.status, 200, r.body.toString());
        const seen = up.requests.find((q) => q.url === '/echo-auth?match')?.headers.authorization;
        assert.equal(seen, `Basic ${Buffer.from('u:fronting-s3cret').toString('base64')}`);
      } finally {
        ok.destroy();
      }
      // The address of 127.0.0.1 with the SNI of localhost: a shared front end could route it by name.
      const sni = await tlsTunnel(gw.proxyPort, '127.0.0.1', up.port, auth, caPem, 'localhost');
      try {
        const r = await requestOver(sni, { path: '/echo-auth?sni-mismatch', host: `localhost:${up.port}` });
        assert.equal(r.status, 421);
        assert.match(r.body.toString(), /goes to 127\.0\.0\.1 but names localhost, and Airlock sends its credential for 127\.0\.0\.1:\d+ only to 127\.0\.0\.1/);
      } finally {
        sni.destroy();
      }
      // Same SNI as the target, another name in Host.
      const host = await tlsTunnel(gw.proxyPort, 'localhost', up.port, auth, caPem, 'localhost');
      try {
        const r = await requestOver(host, { path: '/echo-auth?host-mismatch', host: `127.0.0.1:${up.port}` });
        assert.equal(r.status, 421);
        assert.match(r.body.toString(), /goes to localhost but names 127\.0\.0\.1/);
      } finally {
        host.destroy();
      }
      assert.ok(!up.requests.some((q) => /mismatch/.test(q.url)), `nothing misdirected reached the upstream: ${JSON.stringify(up.requests.map((q) => q.url).filter((u) => /mismatch/.test(u)))}`);
      // Two Host lines, the first the credential's host: Node reads the first, another server may route by the last.
      const two = await tlsTunnel(gw.proxyPort, 'localhost', up.port, auth, caPem, 'localhost');
      try {
        two.write(`GET /echo-auth?two-hosts HTTP/1.1\r\nHost: localhost:${up.port}\r\nHost: other.example\r\n\r\n`);
        const r = await readResponse(two);
        assert.equal(r.status, 400);
        assert.match(r.body.toString(), /more than one Host header/);
      } finally {
        two.destroy();
      }
      assert.ok(!up.requests.some((q) => q.url === '/echo-auth?two-hosts'), 'nothing reached the upstream');
    } finally {
      await creds.remove(`localhost:${up.port}`);
      await creds.remove(`127.0.0.1:${up.port}`);
    }
  });

  test('a credential never goes over plain HTTP, even to its host and port', async () => {
    const creds = gw.service.credentials;
    await creds.set(`127.0.0.1:${plain.port}`, 'cleartext-s3cret', { username: 'u' });
    try {
      const r = await rawExchange(gw.proxyPort, plainGet(plain, '/echo-auth?plain-cred', `Proxy-Authorization: ${auth}\r\n`));
      assert.equal(r.status, 200);
      const seen = plain.requests.find((q) => q.url === '/echo-auth?plain-cred');
      assert.ok(seen, 'the request was relayed');
      assert.equal(seen.headers.authorization, undefined, 'no credential in clear text');
    } finally {
      await creds.remove(`127.0.0.1:${plain.port}`);
    }
  });
});

describe('shutdown', () => {
  test('closing Airlock records the end of every open session without errors', async () => {
    const lines: string[] = [];
    const a = await startTestAirlock({ upstreamCa: [pki.caPath], log: createLogger('warn', (l) => lines.push(l)) });
    const dbFile = a.service.store.file;
    try {
      const tk = await a.addAgent('shutdown-agent');
      const t = await openTunnel(a.proxyPort, `127.0.0.1:${up.port}`, a.basic('shutdown-agent', tk));
      assert.equal(t.status, 200);
      await a.service.close(); // the tunnel is still open
      t.socket.destroy();
      const db = new Database(dbFile, { readonly: true });
      try {
        const rows = db.prepare('SELECT ended_at FROM sessions WHERE agent = ?').all('shutdown-agent') as Array<{ ended_at: string | null }>;
        assert.equal(rows.length, 1);
        assert.deepEqual(lines.filter((l) => / (error|warn) /.test(l)), []);
        assert.notEqual(rows[0]!.ended_at, null, 'the open session was never ended');
      } finally {
        db.close();
      }
    } finally {
      await removeDir(a.dataDir);
    }
  });
});
