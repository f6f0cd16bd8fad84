import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket, connect, createSecureContext, createServer, type SecureContext } from 'node:tls';
import { LeafIssuer, loadOrCreateCa, type CertAuthority } from '../../certs/index';
import { ContextPool } from '../../certs/context-pool';
import { makeTempDir, removeDir } from '../helpers';

// Real parts only: a real Airlock CA (and a second, independent one with its
// own data dir and so its own leaf key), real leaves, real TLS on 127.0.0.1.

const dirs: string[] = [];
const issuers: LeafIssuer[] = [];
const pools: ContextPool[] = [];
let ca: CertAuthority;
let issuer: LeafIssuer;
let keyPem: string;
/** An independent CA whose leaves carry a different key. */
let otherCa: CertAuthority;
let otherIssuer: LeafIssuer;

async function freshCa(): Promise<CertAuthority> {
  const d = await makeTempDir('airlock-certs-pool-');
  dirs.push(d);
  return loadOrCreateCa(d);
}

function newPool(key: string, size?: number, idleMs?: number): ContextPool {
  const p = new ContextPool(key, size, idleMs);
  pools.push(p);
  return p;
}

before(async () => {
  [ca, otherCa] = await Promise.all([freshCa(), freshCa()]);
  issuer = new LeafIssuer(ca);
  otherIssuer = new LeafIssuer(otherCa);
  issuers.push(issuer, otherIssuer);
  keyPem = (await issuer.getCertificate('warm.pool.test')).keyPem;
});

after(async () => {
  for (const p of pools) p.close();
  for (const i of issuers) i.close();
  await Promise.all(issuers.map((i) => i.flush()));
  await Promise.all(dirs.map((d) => removeDir(d)));
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface TlsServer {
  port: number;
  /** Errors the server reported for failed handshakes. */
  clientErrors: NodeJS.ErrnoException[];
  close(): Promise<void>;
}

/** How a server installs a context: by SNI name, or as a socket's own context. */
type Install = { sni: Record<string, SecureContext> } | { own: SecureContext };

/**
 * A server on 127.0.0.1 that says "hello" over TLS. `sni`: a tls.Server picking
 * the context by SNI name (no default certificate). `own`: a net.Server wrapping
 * each socket in `new TLSSocket(sock, { isServer: true, secureContext })`, as the
 * gateway does. (tls.createServer ignores a `secureContext` option on Node 20.)
 */
async function serve(how: Install): Promise<TlsServer> {
  const sockets = new Set<Socket>();
  const clientErrors: NodeJS.ErrnoException[] = [];
  const onError = (err: Error) => { clientErrors.push(err as NodeJS.ErrnoException); };
  let server: NetServer;
  if ('sni' in how) {
    const byName = how.sni;
    server = createServer({
      SNICallback: (name, cb) => {
        const ctx = byName[name];
        if (ctx) cb(null, ctx);
        else cb(new Error(`no context for ${name}`));
      },
    }, (sock) => { sock.end('hello'); });
    server.on('tlsClientError', onError);
  } else {
    const secureContext = how.own;
    server = createNetServer((raw) => {
      const sock = new TLSSocket(raw, { isServer: true, secureContext });
      sock.on('error', (err) => { onError(err); sock.destroy(); });
      sock.once('secure', () => { sock.end('hello'); });
    });
  }
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    clientErrors,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

interface Hello { authorized: boolean; san: string | undefined; data: string }

/** A client that trusts only `caPem` and checks `servername` against the certificate. */
function hello(port: number, servername: string, caPem: string): Promise<Hello> {
  return new Promise<Hello>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: caPem });
    s.setTimeout(2_000, () => s.destroy(new Error('timeout')));
    let data = '';
    s.on('secureConnect', () => {
      const san = s.getPeerCertificate().subjectaltname;
      s.on('data', (c: Buffer) => { data += c.toString(); });
      s.on('end', () => { s.destroy(); resolve({ authorized: s.authorized, san, data }); });
    });
    s.on('error', (err) => { s.destroy(); reject(err); });
  });
}

/** `ctx` serves a verified handshake for `host`, both through SNICallback and as the server's own context. */
async function assertServes(ctx: SecureContext, host: string, caPem = ca.certPem): Promise<void> {
  for (const how of [{ sni: { [host]: ctx } }, { own: ctx }]) {
    const srv = await serve(how);
    try {
      const r = await hello(srv.port, host, caPem);
      assert.deepEqual(r, { authorized: true, san: `DNS:${host}`, data: 'hello' }, host);
    } finally {
      await srv.close();
    }
  }
}

test('after fill(), take() hands out spares whose certificate serves verified handshakes, one per host', async () => {
  const a = await issuer.getCertificate('alpha.pool.test');
  const b = await issuer.getCertificate('beta.pool.test');
  assert.equal(a.keyPem, keyPem);
  assert.equal(b.keyPem, keyPem);

  const pool = newPool(keyPem, 2, 60_000);
  pool.fill();
  const ctxA = pool.take(a.certPem);
  const ctxB = pool.take(b.certPem);
  assert.deepEqual(pool.stats, { pooled: 2, made: 0 });
  assert.notEqual(ctxA, ctxB, 'two hosts get two contexts');

  // Both contexts are taken before either handshake: if setCert did not replace
  // the certificate, or one context were shared, one of the hosts would fail.
  const srv = await serve({ sni: { 'alpha.pool.test': ctxA, 'beta.pool.test': ctxB } });
  try {
    for (const host of ['alpha.pool.test', 'beta.pool.test', 'alpha.pool.test']) {
      const r = await hello(srv.port, host, ca.certPem);
      assert.equal(r.authorized, true, host);
      assert.equal(r.san, `DNS:${host}`);
      assert.equal(r.data, 'hello');
    }
    // The client checks the name: beta's context does not pass for alpha.
    const crossed = await serve({ sni: { 'alpha.pool.test': ctxB } });
    try {
      await assert.rejects(hello(crossed.port, 'alpha.pool.test', ca.certPem), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    } finally {
      await crossed.close();
    }
    // And a client trusting only another CA refuses the leaf.
    await assert.rejects(hello(srv.port, 'alpha.pool.test', otherCa.certPem), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  } finally {
    await srv.close();
  }
  assert.equal(srv.clientErrors.length, 0);
  // Each also serves as a socket's own context (the gateway's first context).
  await assertServes(ctxA, 'alpha.pool.test');
  await assertServes(ctxB, 'beta.pool.test');
});

test('without spares take() falls back to createSecureContext and still serves verified handshakes', async () => {
  const a = await issuer.getCertificate('gamma.pool.test');
  const b = await issuer.getCertificate('delta.pool.test');

  // Never filled.
  const cold = newPool(keyPem, 2, 60_000);
  const c1 = cold.take(a.certPem);
  assert.deepEqual(cold.stats, { pooled: 0, made: 1 });
  await assertServes(c1, 'gamma.pool.test');

  // Spares used up: the second take (no refill in between) is made.
  const small = newPool(keyPem, 1, 60_000);
  small.fill();
  const p1 = small.take(a.certPem);
  const p2 = small.take(b.certPem);
  assert.deepEqual(small.stats, { pooled: 1, made: 1 });
  assert.notEqual(p1, p2);
  await assertServes(p1, 'gamma.pool.test');
  await assertServes(p2, 'delta.pool.test');

  // close() drops the spares, and fill() after close() makes none.
  const closed = newPool(keyPem, 2, 60_000);
  closed.fill();
  closed.close();
  const m1 = closed.take(a.certPem);
  closed.fill();
  const m2 = closed.take(b.certPem);
  assert.deepEqual(closed.stats, { pooled: 0, made: 2 });
  await assertServes(m1, 'gamma.pool.test');
  await assertServes(m2, 'delta.pool.test');
});

test('the pool refills in the background after use, and not after close()', async () => {
  const a = await issuer.getCertificate('epsilon.pool.test');
  const b = await issuer.getCertificate('zeta.pool.test');

  const pool = newPool(keyPem, 1, 20);
  pool.fill();
  pool.take(a.certPem);
  assert.deepEqual(pool.stats, { pooled: 1, made: 0 });
  pool.take(a.certPem); // the refill is not synchronous: nothing spare yet
  assert.deepEqual(pool.stats, { pooled: 1, made: 1 });

  // Poll with take() until one comes from the pool again (bounded).
  const deadline = Date.now() + 2_000;
  let refilled: SecureContext | undefined;
  while (Date.now() < deadline) {
    await sleep(10);
    const before = pool.stats.pooled;
    const ctx = pool.take(b.certPem);
    if (pool.stats.pooled > before) { refilled = ctx; break; }
  }
  assert.ok(refilled, `no refill within 2 s (stats ${JSON.stringify(pool.stats)})`);
  assert.equal(pool.stats.pooled, 2);
  // The refilled spare holds the key: it serves a verified handshake.
  await assertServes(refilled, 'zeta.pool.test');

  // After close(), with a refill timer pending: nothing comes back.
  const shut = newPool(keyPem, 1, 5);
  shut.fill();
  shut.take(a.certPem); // schedules a refill in 5 ms
  assert.deepEqual(shut.stats, { pooled: 1, made: 0 });
  shut.close();
  await sleep(100); // 20 × idleMs
  const late = shut.take(b.certPem);
  await sleep(50);
  shut.take(b.certPem);
  assert.deepEqual(shut.stats, { pooled: 1, made: 2 });
  await assertServes(late, 'zeta.pool.test');
});

test('a certificate for another key: a spare takes it silently but cannot complete a handshake; the fallback throws', async () => {
  const foreign = await otherIssuer.getCertificate('foreign.pool.test');
  assert.notEqual(foreign.keyPem, keyPem, 'the second CA has its own leaf key');
  const x = new X509Certificate(foreign.certPem);
  assert.equal(x.checkPrivateKey(createPrivateKey(keyPem)), false);
  assert.equal(x.checkPrivateKey(createPrivateKey(foreign.keyPem)), true);

  // Pooled path (Node 20 / OpenSSL 3): setCert accepts the certificate (OpenSSL
  // drops the spare's mismatched key instead of failing), so take() returns.
  const pool = newPool(keyPem, 2, 60_000);
  pool.fill();
  const ctx = pool.take(foreign.certPem);
  assert.deepEqual(pool.stats, { pooled: 1, made: 0 });

  // ...but no handshake completes with it, even for a client that trusts the
  // foreign CA and asks for the name on the certificate: the server has no usable
  // key. (The exact OpenSSL codes differ by Node version and by how the context is
  // installed, so only the failure itself is asserted, on both routes.)
  const ways: Array<[string, Install]> = [
    ['SNICallback', { sni: { 'foreign.pool.test': ctx } }],
    ['own secureContext', { own: ctx }],
  ];
  for (const [how, install] of ways) {
    const srv = await serve(install);
    try {
      await assert.rejects(hello(srv.port, 'foreign.pool.test', otherCa.certPem), (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code), /^ERR_SSL_|^ECONNRESET$/, `${how}: ${err.message}`);
        return true;
      });
      const deadline = Date.now() + 2_000;
      while (srv.clientErrors.length === 0 && Date.now() < deadline) await sleep(10);
      assert.equal(srv.clientErrors.length, 1, how);
    } finally {
      await srv.close();
    }
  }

  // The other spare still holds the key and serves a good certificate.
  const good = await issuer.getCertificate('eta.pool.test');
  const ok = pool.take(good.certPem);
  assert.deepEqual(pool.stats, { pooled: 2, made: 0 });
  await assertServes(ok, 'eta.pool.test');

  // Fallback path (no spare left): createSecureContext({ key, cert }) throws.
  assert.throws(() => pool.take(foreign.certPem), /key values mismatch/i);
  assert.deepEqual(pool.stats, { pooled: 2, made: 1 });
});

/**
 * Connects with TLS 1.2 to a server that wraps each socket in `new TLSSocket(raw, { isServer })`
 * (the gateway's way: no renegotiation limit from tls.createServer), then asks to renegotiate.
 * Returns 'renegotiated' or the client's error code, and whether the connection still echoes after.
 */
async function tryRenegotiate(ctx: SecureContext, host: string): Promise<{ result: string; echoed: boolean }> {
  const srv = createNetServer((raw) => {
    const sock = new TLSSocket(raw, { isServer: true, secureContext: ctx });
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: Buffer) => sock.write(d));
  });
  const sockets = new Set<Socket>();
  srv.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  const c = connect({ host: '127.0.0.1', port, servername: host, ca: ca.certPem, maxVersion: 'TLSv1.2' });
  try {
    let clientError: NodeJS.ErrnoException | null = null;
    c.on('error', (e) => { clientError = e; });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no handshake within 2 s')), 2_000);
      c.once('secureConnect', () => { clearTimeout(t); resolve(); });
      c.once('error', (e) => { clearTimeout(t); reject(e); });
    });
    assert.equal(c.authorized, true);
    assert.equal(c.getProtocol(), 'TLSv1.2');
    const result = await new Promise<string>((resolve) => {
      const t = setTimeout(() => resolve(clientError ? String(clientError.code) : 'no answer'), 2_000);
      c.renegotiate({}, (err) => { clearTimeout(t); resolve(err ? String((err as NodeJS.ErrnoException).code) : 'renegotiated'); });
      c.write('ping'); // the server's next read is where it meets the renegotiation
      c.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(t); resolve(String(e.code)); });
    });
    // After a refused renegotiation the connection is gone; after an accepted one it still echoes.
    const echoed = await new Promise<boolean>((resolve) => {
      if (c.destroyed) return resolve(false);
      const t = setTimeout(() => resolve(false), 500);
      c.once('data', () => { clearTimeout(t); resolve(true); });
      c.write('again');
    });
    return { result, echoed };
  } finally {
    c.destroy();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test('client-facing contexts refuse TLS 1.2 renegotiation: pooled, made on demand, and from the issuer', async () => {
  const a = await issuer.getCertificate('reneg.pool.test');
  const pool = newPool(keyPem, 1, 60_000);
  pool.fill();
  const pooled = pool.take(a.certPem);
  const made = pool.take(a.certPem);
  assert.deepEqual(pool.stats, { pooled: 1, made: 1 });
  const fromIssuer = await issuer.getSecureContext('reneg.pool.test');
  for (const [how, ctx] of [['pooled', pooled], ['made', made], ['issuer', fromIssuer]] as const) {
    const r = await tryRenegotiate(ctx, 'reneg.pool.test');
    // OpenSSL's no_renegotiation alert: the client's renegotiate() fails with EPROTO.
    assert.notEqual(r.result, 'renegotiated', `${how}: the server renegotiated`);
    assert.equal(r.result, 'EPROTO', how);
  }
  // The same client against a context without the option renegotiates (the check above can fail).
  const plain = createSecureContext({ key: keyPem, cert: a.certPem });
  assert.deepEqual(await tryRenegotiate(plain, 'reneg.pool.test'), { result: 'renegotiated', echoed: true });
});
