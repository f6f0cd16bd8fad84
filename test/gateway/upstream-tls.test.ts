// Upstream TLS trust, with real TLS servers on 127.0.0.1 and the real UpstreamPool: OpenSSL security
// level 2 on every path an upstream connection takes (undici's connector, https.Agent, early
// connections, a tunnel through an upstream proxy); weak keys and SHA-1 signatures explained as
// verification failures; Airlock's own CA never trusted upstream, even when an --upstream-ca file names it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import forge from 'node-forge';
import { createProxy } from 'proxy';
import { request as undiciRequest } from 'undici';
import { LeafIssuer, loadOrCreateCa } from '../../certs/index';
import { UpstreamPool, explainUpstreamError, fromUndiciError } from '../../main/gateway/upstream';
import { UpstreamProxy } from '../../main/gateway/upstream-proxy';
import { createTestPki, type TestPki } from '../helpers';
import { makeTempDir, removeDir } from '../helpers/tmp';

let pki: TestPki;
const dirs: string[] = [];
const closers: Array<() => Promise<void>> = [];

before(async () => { pki = await createTestPki(); });
after(async () => {
  for (const c of closers.reverse()) await c();
  await Promise.all(dirs.map((d) => removeDir(d)));
});

/** A leaf for IP 127.0.0.1 signed by the test CA, with a key of `bits` and a signature by `md`. */
function leaf(bits: number, md: 'sha256' | 'sha1'): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 30 * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: '127.0.0.1' }]);
  cert.setIssuer(forge.pki.certificateFromPem(pki.caPem).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(pki.caKeyPem), md === 'sha1' ? forge.md.sha1.create() : forge.md.sha256.create());
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: forge.pki.certificateToPem(cert) };
}

/** An HTTPS server on 127.0.0.1 answering "ok"; level 0 on its side, so it will serve any certificate. */
async function serve(cert: { key: string; cert: string }, maxVersion: tls.SecureVersion = 'TLSv1.3'): Promise<number> {
  const server = https.createServer({ ...cert, ciphers: 'DEFAULT:@SECLEVEL=0', maxVersion }, (_req, res) => res.end('ok'));
  server.on('tlsClientError', () => {});
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return (server.address() as AddressInfo).port;
}

function newPool(o: Partial<ConstructorParameters<typeof UpstreamPool>[0]> = {}): UpstreamPool {
  const pool = new UpstreamPool({ extraCaFiles: [pki.caPath], connectTimeoutMs: 5_000, systemTrust: { files: [] }, onWarning: () => {}, ...o });
  closers.push(async () => pool.destroy());
  return pool;
}

type Outcome = { ok: true; body: string; protocol: string | null } | { ok: false; err: NodeJS.ErrnoException };

/** GET / through undici with the pool's dispatcher (the gateway's relay path). */
async function viaUndici(pool: UpstreamPool, port: number): Promise<Outcome> {
  try {
    const r = await undiciRequest(`https://127.0.0.1:${port}/`, { dispatcher: pool.dispatcher, headersTimeout: 5_000, bodyTimeout: 5_000 });
    return { ok: true, body: await r.body.text(), protocol: null };
  } catch (e) {
    return { ok: false, err: fromUndiciError(e as Error & { code?: string }) };
  }
}

/** GET / through http.request with the pool's https.Agent (the Node-client path). */
function viaAgent(pool: UpstreamPool, port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', agent: pool.https, timeout: 5_000 }, (res) => {
      const protocol = (res.socket as tls.TLSSocket).getProtocol();
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ ok: true, body, protocol }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, err }));
    req.end();
  });
}

/** An early connection (preconnect), then a request that takes it: refused when verification fails. */
async function viaPreconnect(pool: UpstreamPool, port: number): Promise<Outcome> {
  pool.preconnect('127.0.0.1', port, undefined);
  await new Promise((r) => setTimeout(r, 300));
  return viaUndici(pool, port);
}

test('upstream TLS uses OpenSSL security level 2 on every path: a 1024-bit RSA upstream is refused, 2048 works with TLS 1.3 and 1.2', async () => {
  const good = await serve(leaf(2048, 'sha256'));
  const good12 = await serve(leaf(2048, 'sha256'), 'TLSv1.2');
  const weak = await serve(leaf(1024, 'sha256'));
  const pool = newPool();

  for (const [how, get] of [['undici', viaUndici], ['https.Agent', viaAgent], ['preconnect', viaPreconnect]] as const) {
    const ok = await get(pool, good);
    assert.ok(ok.ok, `${how}: ${ok.ok ? '' : ok.err.message}`);
    assert.equal(ok.body, 'ok');
    if (how === 'https.Agent') assert.equal(ok.protocol, 'TLSv1.3', 'TLS 1.3 still negotiated');
    const ok12 = await get(pool, good12);
    assert.ok(ok12.ok, `${how} TLS 1.2: ${ok12.ok ? '' : ok12.err.message}`);
    if (how === 'https.Agent') assert.equal(ok12.protocol, 'TLSv1.2');

    const bad = await get(pool, weak);
    assert.equal(bad.ok, false, `${how}: a 1024-bit RSA upstream was accepted`);
    if (!bad.ok) {
      assert.match(bad.err.message, /EE certificate key too weak/, how);
      const x = explainUpstreamError(bad.err, `127.0.0.1:${weak}`, true);
      assert.equal(x.code, 'upstream-tls-unverified', `${how}: ${x.message}`);
      assert.equal(x.status, 502);
      assert.match(x.message, /could not be verified .*too weak/);
    }
  }

  // Through an upstream proxy (a real CONNECT proxy): the tunnel's TLS uses the same context.
  const server = http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  createProxy(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  const proxied = newPool({ proxy: UpstreamProxy.from(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, []) });
  for (const get of [viaUndici, viaAgent]) {
    const ok = await get(proxied, good);
    assert.ok(ok.ok, ok.ok ? '' : ok.err.message);
    const bad = await get(proxied, weak);
    assert.equal(bad.ok, false, 'a 1024-bit RSA upstream was accepted through the upstream proxy');
    if (!bad.ok) assert.equal(explainUpstreamError(bad.err, 'x', true).code, 'upstream-tls-unverified', bad.err.message);
  }
});

test('a SHA-1-signed upstream certificate is explained as a verification failure', async () => {
  const port = await serve(leaf(2048, 'sha1'));
  const pool = newPool();
  for (const get of [viaUndici, viaAgent]) {
    const r = await get(pool, port);
    assert.equal(r.ok, false, 'a SHA-1 signature was accepted');
    if (r.ok) continue;
    assert.match(r.err.message, /digest algorithm too weak/);
    const x = explainUpstreamError(r.err, `127.0.0.1:${port}`, true);
    assert.deepEqual([x.status, x.code], [502, 'upstream-tls-unverified'], x.message);
    assert.match(x.message, /^Airlock did not forward this request: the TLS certificate of 127\.0\.0\.1:\d+ could not be verified \(UNSPECIFIED: CA signature digest algorithm too weak\)\. Its key or signature is too weak/);
  }
});

test("an --upstream-ca file naming Airlock's own CA: that certificate is left out, with a warning", async () => {
  const dataDir = await makeTempDir('airlock-upstream-tls-');
  dirs.push(dataDir);
  const ca = await loadOrCreateCa(dataDir, { onWarning: () => {} });
  const issuer = new LeafIssuer(ca, { onWarning: () => {} });
  closers.push(async () => { issuer.close(); await issuer.flush(); });
  // An upstream presenting a certificate Airlock itself issued (as the gateway would to an agent).
  const port = await serve(await issuer.getCertificate('127.0.0.1').then(({ certPem, keyPem }) => ({ cert: certPem, key: keyPem })));
  // The file holds the test CA and the Airlock CA (CRLF line ends: still recognised).
  const file = join(dataDir, 'corp-and-airlock.pem');
  writeFileSync(file, pki.caPem + ca.certPem.replace(/\n/g, '\r\n'));

  const warnings: string[] = [];
  const pool = newPool({ extraCaFiles: [file], systemTrust: { files: [], distrust: [ca.certPem] }, onWarning: (m) => warnings.push(m) });
  const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  assert.ok(!pool.ca.some((c) => body(c) === body(ca.certPem)), "Airlock's CA is in upstream trust");
  assert.ok(pool.ca.some((c) => body(c) === body(pki.caPem)), 'the other CA in the file is kept');
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.ok(warnings[0]!.includes(file), warnings[0]);
  assert.ok(warnings[0]!.includes(ca.fingerprint256), warnings[0]);
  assert.match(warnings[0]!, /Airlock's own CA .*not trusted for upstream connections/);

  for (const get of [viaUndici, viaAgent]) {
    const r = await get(pool, port);
    assert.equal(r.ok, false, 'an upstream with an Airlock-issued certificate was trusted');
    if (!r.ok) assert.equal(explainUpstreamError(r.err, 'x', true).code, 'upstream-tls-unverified', r.err.message);
  }
  // The same file without distrust (as before the filter) would trust it: the check above can fail.
  const naive = newPool({ extraCaFiles: [file], systemTrust: { files: [] } });
  const r = await viaAgent(naive, port);
  assert.ok(r.ok, r.ok ? '' : r.err.message);
});

test('an idle upstream connection is closed after idleConnectionMs, whatever Keep-Alive hint the server sends (each idle one holds ~100 KB)', async () => {
  // The server asks for 120 s; the pool keeps its connection 300 ms here (10 s by default).
  const server = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (_req, res) => res.end('ok'));
  server.keepAliveTimeout = 120_000;
  const open = new Set<Socket>();
  server.on('secureConnection', (s: Socket) => { open.add(s); s.once('close', () => open.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => { for (const s of open) s.destroy(); server.close(() => r()); }));
  const port = (server.address() as AddressInfo).port;
  for (const [idleConnectionMs, expectOpen] of [[300, 0], [60_000, 1]] as const) {
    const pool = new UpstreamPool({ extraCaFiles: [pki.caPath], connectTimeoutMs: 5_000, systemTrust: { files: [] }, idleConnectionMs });
    closers.push(async () => pool.destroy());
    const r = await undiciRequest(`https://127.0.0.1:${port}/`, { dispatcher: pool.dispatcher, headersTimeout: 5_000, bodyTimeout: 5_000 });
    assert.equal(r.headers['keep-alive'], 'timeout=120');
    assert.equal(await r.body.text(), 'ok');
    assert.equal(open.size, 1);
    await new Promise((res) => setTimeout(res, 1_500));
    assert.equal(open.size, expectOpen, `idleConnectionMs ${idleConnectionMs}`);
    pool.destroy();
    for (let i = 0; i < 100 && open.size > 0; i++) await new Promise((res) => setTimeout(res, 10));
  }
});
