import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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

/** The files in a leaves directory, sorted. */
function leafFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

test('the disk cache is bounded: past maxDiskEntries the least recently used files are deleted', async () => {
  const own = await freshCa();
  const dir = own.paths.leavesDir;
  const issuer = new LeafIssuer(own, { maxDiskEntries: 5 });
  const hosts = Array.from({ length: 12 }, (_, i) => `flood${i}.disk.test`);
  for (const h of hosts) {
    await issuer.getSecureContext(h);
    await issuer.flush(); // one at a time: a batch is written in parallel, in no set order
  }
  assert.deepEqual(leafFiles(dir), hosts.slice(-5).map((h) => `${h}.pem`).sort());
  assert.equal(issuer.stats.issued, 12);

  // A new issuer (a restart) reads them from disk; a read counts as a use, so the one read now
  // outlives the others when new leaves push the cache over its bound.
  for (const [i, h] of hosts.slice(-5).entries()) {
    const t = new Date(Date.now() - (10 - i) * 60_000); // distinct times, oldest first
    utimesSync(join(dir, `${h}.pem`), t, t);
  }
  const next = new LeafIssuer(own, { maxDiskEntries: 5 });
  await next.getSecureContext('flood7.disk.test'); // the oldest file
  await next.flush();
  assert.equal(next.stats.diskHits, 1);
  for (const h of ['new0.disk.test', 'new1.disk.test']) {
    await next.getSecureContext(h);
    await next.flush();
  }
  assert.deepEqual(leafFiles(dir),
    ['flood10.disk.test.pem', 'flood11.disk.test.pem', 'flood7.disk.test.pem', 'new0.disk.test.pem', 'new1.disk.test.pem']);
});

test('a disk cache over the bound at start is cut to the most recent files', async () => {
  const own = await freshCa();
  const dir = own.paths.leavesDir;
  mkdirSync(dir, { recursive: true });
  // 40 files, as an older Airlock may have left: modified one minute apart, name 0 the oldest.
  const base = Date.now() - 3600_000;
  for (let i = 0; i < 40; i++) {
    const f = join(dir, `old${i}.start.test.pem`);
    writeFileSync(f, 'stale');
    utimesSync(f, new Date(base + i * 60_000), new Date(base + i * 60_000));
  }
  const issuer = new LeafIssuer(own, { maxDiskEntries: 8 });
  await issuer.warm();
  await issuer.flush();
  assert.deepEqual(leafFiles(dir), Array.from({ length: 8 }, (_, i) => `old${32 + i}.start.test.pem`).sort());
  // And it stays bounded as leaves are added.
  await issuer.getSecureContext('fresh.start.test');
  await issuer.flush();
  const after = leafFiles(dir);
  assert.equal(after.length, 8);
  assert.ok(after.includes('fresh.start.test.pem') && !after.includes('old32.start.test.pem'), after.join(' '));
});

test('with a tiny disk cache under a flood, concurrent first requests for one host still get one certificate', async () => {
  const own = await freshCa();
  const issuer = new LeafIssuer(own, { maxDiskEntries: 2 });
  const flood = Array.from({ length: 30 }, (_, i) => issuer.getSecureContext(`f${i}.burst.test`));
  const burst = Array.from({ length: 20 }, () => issuer.getCertificate('one.burst.test'));
  const [, certs] = await Promise.all([Promise.all(flood), Promise.all(burst)]);
  assert.equal(new Set(certs.map((c) => c.certPem)).size, 1);
  assert.equal(issuer.stats.issued, 31);
  await issuer.flush();
  assert.ok(leafFiles(own.paths.leavesDir).length <= 2, leafFiles(own.paths.leavesDir).join(' '));
});

test('a cached leaf file with more certificates appended serves only the leaf', async () => {
  const own = await freshCa();
  const first = new LeafIssuer(own);
  const orig = await first.getCertificate('chain.example.test');
  await first.flush();
  const file = join(own.paths.leavesDir, 'chain.example.test.pem');
  // Another certificate after the leaf: an intermediate someone slipped in (here: the CA itself).
  writeFileSync(file, orig.certPem + own.certPem);

  const second = new LeafIssuer(own);
  const got = await second.getCertificate('chain.example.test');
  assert.equal(second.stats.diskHits, 1, 'still a valid cached leaf');
  assert.equal(got.certPem, orig.certPem);
  assert.equal(got.certPem.match(/BEGIN CERTIFICATE/g)?.length, 1);

  // What a client receives: one certificate in the handshake.
  const server = createServer({
    SNICallback: (name, cb) => { second.getSecureContext(name).then((c) => cb(null, c), (e: Error) => cb(e)); },
  }, (sock) => { sock.end(); });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const r = await runCommand('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'chain.example.test', '-showcerts'],
    { timeoutMs: 20_000, input: '' });
  assert.match(r.stdout, /Certificate chain/, r.stdout + r.stderr);
  assert.equal(r.stdout.match(/BEGIN CERTIFICATE/g)?.length, 1, r.stdout);
});

test('a leaf key owned by another user is refused; one open to others is made 0600 with a warning', {
  skip: (process.platform === 'win32' || process.getuid?.() !== 0) && 'chown to another uid needs root',
}, async () => {
  const own = await freshCa();
  await new LeafIssuer(own).getCertificate('owner.example.test');
  const original = readFileSync(own.paths.leafKey, 'utf8');

  chownSync(own.paths.leafKey, 12345, 12345);
  const refused = new LeafIssuer(own);
  await assert.rejects(refused.getSecureContext('owner.example.test'), (e: unknown) =>
    e instanceof CaError && e.message.includes(own.paths.leafKey) && /owned by uid 12345/.test(e.message) &&
    /airlock ca rotate/.test(e.message));
  assert.equal(readFileSync(own.paths.leafKey, 'utf8'), original, 'not replaced either');

  chownSync(own.paths.leafKey, process.getuid!(), process.getgid!());
  chmodSync(own.paths.leafKey, 0o644);
  const warnings: string[] = [];
  const loose = new LeafIssuer(own, { onWarning: (m) => warnings.push(m) });
  const got = await loose.getCertificate('owner.example.test');
  assert.equal(got.keyPem.trim(), createPrivateKey(original).export({ type: 'sec1', format: 'pem' }).toString().trim(), 'the same key is used');
  assert.equal(statSync(own.paths.leafKey).mode & 0o777, 0o600);
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0]!.includes(own.paths.leafKey), warnings[0]);
  assert.match(warnings[0]!, /mode 0644.*may have been copied.*airlock ca rotate/);
});
