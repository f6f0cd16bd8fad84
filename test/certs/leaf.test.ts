import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CaError, LeafIssuer, loadOrCreateCa, type CertAuthority } from '../../certs/index';
import { LEAF_WRITE_DELAY_MS } from '../../certs/leaf';
import { makeTempDir, removeDir, runCommand } from '../helpers';

const DAY = 24 * 60 * 60 * 1000;
const dirs: string[] = [];
const servers: Server[] = [];
let dataDir: string;
let ca: CertAuthority;
let caPublic: KeyObject;

async function freshCa(): Promise<CertAuthority> {
  const d = await makeTempDir('airlock-certs-leaf-');
  dirs.push(d);
  return loadOrCreateCa(d);
}

before(async () => {
  ca = await freshCa();
  dataDir = dirs[0]!;
  caPublic = new X509Certificate(ca.certPem).publicKey;
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  await Promise.all(dirs.map((d) => removeDir(d)));
});

async function opensslVerify(caFile: string, certPem: string, name: string): Promise<void> {
  const file = join(dataDir, `${name}.pem`);
  writeFileSync(file, certPem);
  const r = await runCommand('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', caFile, file], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /: OK/);
}

test('leaves for a DNS name, IPv4 and IPv6 carry the right SAN and verify against the CA', async () => {
  const issuer = new LeafIssuer(ca);
  const cases: Array<[string, string, string]> = [
    ['Example.TEST.', 'DNS:example.test', 'example.test'],
    ['127.0.0.1', 'IP Address:127.0.0.1', '127.0.0.1'],
    ['[::1]', 'IP Address:0:0:0:0:0:0:0:1', '::1'],
    ['2001:db8::2:1', 'IP Address:2001:DB8:0:0:0:0:2:1', '2001:db8::2:1'],
  ];
  const caText = await runCommand('openssl', ['x509', '-in', ca.paths.cert, '-noout', '-ext', 'subjectKeyIdentifier']);
  const caSki = /([0-9A-F]{2}(?::[0-9A-F]{2}){19})/.exec(caText.stdout)?.[1];
  assert.ok(caSki, caText.stdout + caText.stderr);
  const now = Date.now();
  for (const [host, san, cn] of cases) {
    const { certPem, keyPem } = await issuer.getCertificate(host);
    const x = new X509Certificate(certPem);
    assert.equal(x.subjectAltName, san, host);
    assert.equal(x.subject, `CN=${cn}`);
    assert.equal(x.issuer, new X509Certificate(ca.certPem).subject);
    assert.equal(x.ca, false);
    assert.ok(x.verify(caPublic), `${host} verifies against the CA key`);
    assert.ok(x.checkIssued(new X509Certificate(ca.certPem)));
    assert.ok(x.checkPrivateKey(createPrivateKey(keyPem)));
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth EKU');
    assert.ok(Math.abs(new Date(x.validFrom).getTime() - (now - DAY)) < 5_000);
    assert.ok(Math.abs(new Date(x.validTo).getTime() - (now + 397 * DAY)) < 5_000);
    await opensslVerify(ca.paths.cert, certPem, `leaf-${cn.replace(/:/g, '_')}`);
    const text = await runCommand('openssl', ['x509', '-noout', '-text'], { input: certPem });
    assert.match(text.stdout, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text.stdout, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text.stdout, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
    assert.doesNotMatch(text.stdout, /Subject Key Identifier/);
    assert.match(text.stdout, /TLS Web Server Authentication/);
    assert.ok(text.stdout.includes(caSki), 'authorityKeyIdentifier = CA subjectKeyIdentifier');
  }
  assert.equal(issuer.stats.issued, 4);
});

test('all leaves share one persisted 0600 leaf key', async () => {
  const a = await new LeafIssuer(ca).getCertificate('a.share.test');
  const b = await new LeafIssuer(ca).getCertificate('b.share.test');
  assert.equal(a.keyPem, b.keyPem);
  const pub = (pem: string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  assert.deepEqual(pub(a.certPem), pub(b.certPem));
  assert.equal(statSync(ca.paths.leafKey).mode & 0o777, 0o600);
  const onDisk = createPublicKey(readFileSync(ca.paths.leafKey, 'utf8')).export({ type: 'spki', format: 'der' });
  assert.deepEqual(onDisk, pub(a.certPem));
  assert.equal(createPrivateKey(a.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('a real TLS handshake through SNICallback is authorized', async () => {
  const issuer = new LeafIssuer(ca);
  const server = createServer({
    SNICallback: (name, cb) => { issuer.getSecureContext(name).then((c) => cb(null, c), (e: Error) => cb(e)); },
  }, (sock) => { sock.end('hello'); });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  const hello = (servername: string) => new Promise<{ authorized: boolean; san?: string; data: string }>(
    (resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername, ca: ca.certPem });
      s.setTimeout(10_000, () => s.destroy(new Error('timeout')));
      let data = '';
      s.on('secureConnect', () => {
        const san = s.getPeerCertificate().subjectaltname;
        s.on('data', (c: Buffer) => { data += c.toString(); });
        s.on('end', () => resolve({ authorized: s.authorized, san, data }));
      });
      s.on('error', reject);
    });
  const r = await hello('example.test');
  assert.equal(r.authorized, true);
  assert.equal(r.san, 'DNS:example.test');
  assert.equal(r.data, 'hello');
  const again = await hello('example.test');
  assert.equal(again.authorized, true);
  assert.equal(issuer.stats.issued + issuer.stats.diskHits, 1); // example.test may be on disk already
  assert.equal(issuer.stats.memoryHits, 1);

  // A hostile SNI name fails the handshake instead of producing a certificate.
  await assert.rejects(hello('bad_-.example..test'));
});

test('concurrent first requests for one host issue exactly one certificate', async () => {
  const issuer = new LeafIssuer(await freshCa());
  const ctxs = await Promise.all(Array.from({ length: 20 }, () => issuer.getSecureContext('burst.example.test')));
  assert.equal(issuer.stats.issued, 1);
  assert.equal(issuer.stats.memoryHits, 19);
  assert.ok(ctxs.every((c) => c === ctxs[0]));
  const certs = await Promise.all(Array.from({ length: 5 }, () => issuer.getCertificate('BURST.example.test.')));
  assert.equal(new Set(certs.map((c) => c.certPem)).size, 1);
  assert.equal(issuer.stats.issued, 1);
});

test('a new issuer reuses the disk cache; stale, foreign or corrupt files are reissued', async () => {
  const local = await freshCa();
  const first = new LeafIssuer(local);
  const orig = await first.getCertificate('cached.example.test');
  await first.getCertificate('::1');
  await first.flush(); // the disk cache is written in the background
  const file = join(local.paths.leavesDir, 'cached.example.test.pem');
  assert.equal(readFileSync(file, 'utf8'), orig.certPem);
  assert.ok(existsSync(join(local.paths.leavesDir, '__1.pem')));

  const second = new LeafIssuer(local);
  assert.equal((await second.getCertificate('cached.example.test')).certPem, orig.certPem);
  await second.getSecureContext('0:0:0:0:0:0:0:1');
  assert.deepEqual({ ...second.stats, issueMs: 0 }, { issued: 0, memoryHits: 0, diskHits: 2, issueMs: 0 });

  // 370 days later the cached leaf has < 30 days left: reissued (CA still valid).
  const later = new LeafIssuer(local, { now: () => new Date(Date.now() + 370 * DAY) });
  const renewed = await later.getCertificate('cached.example.test');
  assert.equal(later.stats.issued, 1);
  await later.flush();
  assert.notEqual(renewed.certPem, orig.certPem);

  // A leaf signed by another CA in the cache file is not trusted.
  const otherIssuer = new LeafIssuer(ca);
  const other = await otherIssuer.getCertificate('cached.example.test');
  await otherIssuer.flush();
  writeFileSync(file, other.certPem);
  const third = new LeafIssuer(local);
  const got = await third.getCertificate('cached.example.test');
  assert.equal(third.stats.issued, 1);
  await third.flush();
  assert.ok(new X509Certificate(got.certPem).verify(new X509Certificate(local.certPem).publicKey));

  // Garbage in the cache file, or a certificate for another host under this name.
  writeFileSync(file, 'garbage');
  const fourth = new LeafIssuer(local);
  await fourth.getCertificate('cached.example.test');
  await fourth.flush();
  writeFileSync(file, readFileSync(join(local.paths.leavesDir, '__1.pem')));
  await fourth.getCertificate('cached.example.test'); // memory hit, file untouched
  const fifth = new LeafIssuer(local);
  const fixed = await fifth.getCertificate('cached.example.test');
  assert.equal(fourth.stats.issued, 1);
  assert.equal(fifth.stats.issued, 1);
  assert.equal(new X509Certificate(fixed.certPem).subjectAltName, 'DNS:cached.example.test');
});

test('the in-memory LRU is bounded', async () => {
  const issuer = new LeafIssuer(ca, { maxEntries: 2 });
  for (const h of ['lru-a.test', 'lru-b.test', 'lru-c.test']) await issuer.getSecureContext(h);
  await issuer.getSecureContext('lru-c.test');
  assert.equal(issuer.stats.memoryHits, 1);
  await issuer.flush(); // the disk cache is written in the background
  await issuer.getSecureContext('lru-a.test'); // evicted from memory, still on disk
  assert.deepEqual([issuer.stats.issued, issuer.stats.memoryHits, issuer.stats.diskHits], [3, 1, 1]);
});

test('long names are truncated in CN only; leaves never outlive the CA', async () => {
  const issuer = new LeafIssuer(ca);
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.example.test`;
  const x = new X509Certificate((await issuer.getCertificate(long)).certPem);
  assert.equal(x.subject, `CN=${long.slice(0, 64)}`);
  assert.equal(x.subjectAltName, `DNS:${long}`);

  const nearEnd = new LeafIssuer(ca, { now: () => new Date(ca.notAfter.getTime() - 100 * DAY) });
  const y = new X509Certificate((await nearEnd.getCertificate('late.example.test')).certPem);
  assert.equal(new Date(y.validTo).getTime(), ca.notAfter.getTime());
});

test('unsafe host names are refused and never touch the file system', async () => {
  // A CA of its own: no other test's background cache write can land in its directory.
  const own = await freshCa();
  const ownDir = dirs[dirs.length - 1]!;
  const issuer = new LeafIssuer(own);
  await issuer.getSecureContext('warm.example.test');
  await issuer.flush();
  const before = readdirSync(own.paths.dir).sort();
  const leavesBefore = readdirSync(own.paths.leavesDir).sort();
  for (const host of ['../../etc/passwd', 'a/../../b', '..', '%2e%2e', 'x\u0000y', '*.example.com', '*', '',
    '..\\..\\x', '/etc/passwd', 'leaves/../ca.key', 'a b', 'ex:ample']) {
    await assert.rejects(issuer.getSecureContext(host), CaError, JSON.stringify(host));
    await assert.rejects(issuer.getCertificate(host), CaError, JSON.stringify(host));
  }
  await issuer.flush();
  assert.deepEqual(readdirSync(own.paths.dir).sort(), before);
  assert.deepEqual(readdirSync(own.paths.leavesDir).sort(), leavesBefore);
  assert.ok(!existsSync(join(ownDir, 'etc')));
});

test('timing: mean cost of issuing a leaf for a new host', async () => {
  const issuer = new LeafIssuer(await freshCa());
  await issuer.getSecureContext('warmup.timing.test'); // leaf key generation, JIT
  const n = 50;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const issueMs0 = issuer.stats.issueMs;
  for (let i = 0; i < n; i++) await issuer.getSecureContext(`h${i}.timing.test`);
  const wall = (performance.now() - t0) / n;
  const cpu = process.cpuUsage(cpu0);
  const issue = (issuer.stats.issueMs - issueMs0) / n;
  console.log(`leaf issuance over ${n} hosts: ${issue.toFixed(2)} ms build+sign, ` +
    `${wall.toFixed(2)} ms wall and ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms CPU per new host ` +
    '(incl. SecureContext + disk cache write)');
  assert.equal(issuer.stats.issued, n + 1);
});

test('a corrupt leaf key is replaced (and its cached leaves reissued); an unreadable one is refused', async () => {
  const local = await freshCa();
  const first = new LeafIssuer(local);
  const before = await first.getCertificate('rekey.example.test');
  writeFileSync(local.paths.leafKey, 'not a key', { mode: 0o600 });
  const second = new LeafIssuer(local);
  const after = await second.getCertificate('rekey.example.test');
  assert.notEqual(after.keyPem, before.keyPem);
  assert.equal(second.stats.issued, 1, 'cached leaf for the old key is not reused');
  assert.ok(new X509Certificate(after.certPem).checkPrivateKey(createPrivateKey(after.keyPem)));
  assert.equal(statSync(local.paths.leafKey).mode & 0o777, 0o600);

  rmSync(local.paths.leafKey);
  mkdirSync(local.paths.leafKey);
  const third = new LeafIssuer(local);
  await assert.rejects(third.getSecureContext('rekey.example.test'),
    (e: unknown) => e instanceof CaError && /leaf key at .*leaf\.key is unreadable \(EISDIR\).*airlock ca rotate/.test(e.message));
});

test('a new leaf is written to the disk cache shortly after it is issued, batched, or at once on flush', async () => {
  const own = await freshCa();
  const issuer = new LeafIssuer(own);
  const file = (h: string) => join(own.paths.leavesDir, `${h}.pem`);
  const t0 = Date.now();
  await issuer.getSecureContext('later-a.test');
  await issuer.getSecureContext('later-b.test');
  // Not yet: the handshake the leaf was issued for is still under way (unless this machine stalled).
  if (Date.now() - t0 < LEAF_WRITE_DELAY_MS / 2) assert.equal(existsSync(file('later-a.test')), false);
  const deadline = Date.now() + 5_000;
  while (!(existsSync(file('later-a.test')) && existsSync(file('later-b.test'))) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(existsSync(file('later-a.test')) && existsSync(file('later-b.test')), 'written in the background without flush()');
  await issuer.getSecureContext('later-c.test');
  await issuer.flush();
  assert.ok(existsSync(file('later-c.test')), 'flush() writes at once');
  assert.equal(new X509Certificate(readFileSync(file('later-c.test'))).subjectAltName, 'DNS:later-c.test');
});
