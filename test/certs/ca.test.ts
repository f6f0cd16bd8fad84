import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaError, LeafIssuer, caPaths, loadOrCreateCa, rotateCa } from '../../certs/index';
import { makeTempDir, removeDir, runCommand } from '../helpers';

const DAY = 24 * 60 * 60 * 1000;
const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await makeTempDir('airlock-certs-ca-');
  dirs.push(d);
  return d;
}
after(async () => { await Promise.all(dirs.map((d) => removeDir(d))); });

async function assertRefused(p: Promise<unknown>, pattern: RegExp): Promise<CaError> {
  let caught: unknown;
  await p.then(() => assert.fail('expected a CaError'), (e: unknown) => { caught = e; });
  assert.ok(caught instanceof CaError, `expected CaError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.match(caught.message, /airlock ca rotate/);
  assert.ok(!caught.message.includes('\n'), 'one line');
  return caught;
}

let shared: string; // one CA reused by the read-only checks (RSA keygen is not free)
before(async () => { shared = await tmp(); });

test('caPaths lays out <dataDir>/ca', () => {
  assert.deepEqual(caPaths('/data'), {
    dir: '/data/ca', cert: '/data/ca/ca.pem', key: '/data/ca/ca.key', bundle: '/data/ca/bundle.pem',
    leafKey: '/data/ca/leaf.key', leavesDir: '/data/ca/leaves',
  });
});

test('a new CA has the required attributes and file modes', async () => {
  const now = new Date();
  const ca = await loadOrCreateCa(shared, { now });
  const x = new X509Certificate(ca.certPem);
  assert.equal(x.ca, true);
  assert.match(x.subject, /^CN=Airlock Local CA \(.+ [0-9a-f]{6}\)\nO=Airlock$/);
  assert.equal(x.issuer, x.subject);
  assert.ok(x.verify(x.publicKey), 'self-signed');
  assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  assert.equal(x.fingerprint256, ca.fingerprint256);
  assert.equal(x.serialNumber.length, 32, '16-byte serial');
  assert.ok(/^[0-7]/.test(x.serialNumber), 'positive serial');
  const notBefore = new Date(x.validFrom).getTime();
  const notAfter = new Date(x.validTo).getTime();
  assert.ok(Math.abs(now.getTime() - DAY - notBefore) < 5_000, 'backdated one day');
  assert.ok(Math.abs(notAfter - now.getTime() - 3652 * DAY) < 2 * DAY, 'about ten years');
  assert.equal(ca.notAfter.getTime(), notAfter);

  const text = await runCommand('openssl', ['x509', '-in', ca.paths.cert, '-noout', '-text']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Signature Algorithm: sha256WithRSAEncryption/);
  assert.match(text.stdout, /Public-Key: \(2048 bit\)/);
  assert.match(text.stdout, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(text.stdout, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(text.stdout, /X509v3 Subject Key Identifier/);

  assert.equal(statSync(ca.paths.key).mode & 0o777, 0o600);
  assert.equal(statSync(ca.paths.cert).mode & 0o777, 0o644);
  assert.equal(statSync(ca.paths.dir).mode & 0o777, 0o700);
  assert.ok(createPrivateKey(readFileSync(ca.paths.key, 'utf8')));
  assert.equal(ca.keyPem, readFileSync(ca.paths.key, 'utf8'));
});

test('later starts load the same CA and tighten a loose key mode, warning that it may have been copied', async () => {
  const first = await loadOrCreateCa(shared);
  const quiet: string[] = [];
  await loadOrCreateCa(shared, { onWarning: (m) => quiet.push(m) });
  assert.deepEqual(quiet, [], 'nothing to say about a CA as it was made');
  chmodSync(first.paths.key, 0o644);
  const warnings: string[] = [];
  const again = await loadOrCreateCa(shared, { onWarning: (m) => warnings.push(m) });
  assert.equal(again.fingerprint256, first.fingerprint256);
  assert.equal(again.certPem, first.certPem);
  assert.equal(statSync(first.paths.key).mode & 0o777, 0o600);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.ok(warnings[0]!.includes(first.paths.key), warnings[0]);
  assert.match(warnings[0]!, /open to other users .*\(mode 0644\).*may have been copied.*airlock ca rotate/);
  assert.ok(!warnings[0]!.includes('\n'), 'one line');
  // Fixed now: the next start says nothing. Only the owner's execute bit: tightened silently.
  chmodSync(first.paths.key, 0o700);
  const later: string[] = [];
  await loadOrCreateCa(shared, { onWarning: (m) => later.push(m) });
  assert.deepEqual(later, []);
  assert.equal(statSync(first.paths.key).mode & 0o777, 0o600);
});

const asRoot = process.platform !== 'win32' && process.getuid?.() === 0;

test('refuses a CA key or leaf key owned by another user, naming the file, its owner and the fix', { skip: !asRoot && 'chown to another uid needs root' }, async () => {
  const d = await tmp();
  const ca = await loadOrCreateCa(d);
  await new LeafIssuer(ca).getCertificate('owner.example.test'); // makes leaf.key
  chownSync(ca.paths.key, 12345, 12345);
  const warnings: string[] = [];
  const err = await assertRefused(loadOrCreateCa(d, { onWarning: (m) => warnings.push(m) }), /is owned by uid 12345/);
  assert.ok(err.message.includes(ca.paths.key), err.message);
  assert.match(err.message, /not by the user running Airlock \(uid 0( \(root\))?\)/);
  assert.equal(statSync(ca.paths.key).uid, 12345, 'left as it was');
  assert.equal(readFileSync(ca.paths.key, 'utf8'), ca.keyPem);

  chownSync(ca.paths.key, 0, 0);
  chownSync(ca.paths.leafKey, 12345, 12345);
  const leafErr = await assertRefused(loadOrCreateCa(d), /leaf key at .*leaf\.key is owned by uid 12345/);
  assert.ok(leafErr.message.includes(ca.paths.leafKey));

  // The fix the sentence names works: rotate replaces both keys, and the start succeeds.
  chownSync(ca.paths.key, 12345, 12345);
  const rotated = await rotateCa(d);
  const loaded = await loadOrCreateCa(d, { onWarning: (m) => warnings.push(m) });
  assert.equal(loaded.fingerprint256, rotated.fingerprint256);
  assert.equal(statSync(loaded.paths.key).uid, 0);
  assert.deepEqual(warnings, []);
});

test('a CA certificate others can write is made 0644 with a warning; one another user owns is warned about', { skip: !asRoot && 'chown to another uid needs root' }, async () => {
  const d = await tmp();
  const ca = await loadOrCreateCa(d);
  chmodSync(ca.paths.cert, 0o666);
  const warnings: string[] = [];
  await loadOrCreateCa(d, { onWarning: (m) => warnings.push(m) });
  assert.equal(statSync(ca.paths.cert).mode & 0o777, 0o644);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.ok(warnings[0]!.includes(ca.paths.cert));
  assert.match(warnings[0]!, /writable by other users .*mode 0666/);

  chownSync(ca.paths.cert, 12345, 12345);
  chmodSync(ca.paths.cert, 0o666);
  const more: string[] = [];
  const loaded = await loadOrCreateCa(d, { onWarning: (m) => more.push(m) });
  assert.equal(loaded.fingerprint256, ca.fingerprint256, 'still used: it matches the key');
  assert.equal(more.length, 1, more.join('\n'));
  assert.match(more[0]!, /CA certificate at .*ca\.pem is owned by uid 12345.*others can write it \(mode 0666\).*airlock ca rotate/);
  assert.equal(statSync(ca.paths.cert).mode & 0o777, 0o666, "another user's file is not changed");
});

test('refuses an unreadable key (a directory in its place)', async () => {
  const d = await tmp();
  const ca = await loadOrCreateCa(d);
  rmSync(ca.paths.key);
  mkdirSync(ca.paths.key);
  const err = await assertRefused(loadOrCreateCa(d), /CA key at .*ca\.key is unreadable \(EISDIR\)/);
  assert.ok(err.message.includes(ca.paths.key));
});

test('refuses a corrupt key, a corrupt certificate and a missing half', async () => {
  const d = await tmp();
  const ca = await loadOrCreateCa(d);
  const keyPem = readFileSync(ca.paths.key, 'utf8');
  writeFileSync(ca.paths.key, keyPem.slice(0, 200), { mode: 0o600 });
  await assertRefused(loadOrCreateCa(d), /CA key at .*ca\.key is corrupt/);
  writeFileSync(ca.paths.key, keyPem, { mode: 0o600 });
  writeFileSync(ca.paths.cert, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  await assertRefused(loadOrCreateCa(d), /CA certificate at .*ca\.pem is corrupt/);
  rmSync(ca.paths.cert);
  await assertRefused(loadOrCreateCa(d), /ca\.pem is missing/);
  assert.equal(readFileSync(ca.paths.key, 'utf8'), keyPem, 'never overwrites an existing key');
});

test('refuses a key that does not belong to the certificate', async () => {
  const a = await loadOrCreateCa(shared);
  const d = await tmp();
  const b = await loadOrCreateCa(d);
  copyFileSync(a.paths.key, b.paths.key);
  await assertRefused(loadOrCreateCa(d), /does not match the certificate/);
});

test('refuses a CA that expires within 7 days', async () => {
  const ca = await loadOrCreateCa(shared);
  const err = await assertRefused(
    loadOrCreateCa(shared, { now: new Date(ca.notAfter.getTime() - 3 * DAY) }),
    /ca\.pem expires on \d{4}-/,
  );
  assert.ok(err.message.includes(ca.paths.cert));
  await assertRefused(loadOrCreateCa(shared, { now: new Date(ca.notAfter.getTime() + DAY) }), /ca\.pem expired on/);
  // 8 days left is still accepted.
  await loadOrCreateCa(shared, { now: new Date(ca.notAfter.getTime() - 8 * DAY) });
});

test('rotate makes a new CA, keeps backups and clears the leaf cache', async () => {
  const d = await tmp();
  const old = await loadOrCreateCa(d);
  const issuer = new LeafIssuer(old);
  await issuer.getCertificate('example.test');
  await issuer.flush(); // the disk cache is written in the background
  assert.equal(readdirSync(old.paths.leavesDir).length, 1);
  const oldLeafKey = readFileSync(old.paths.leafKey, 'utf8');

  const rotated = await rotateCa(d);
  assert.notEqual(rotated.fingerprint256, old.fingerprint256);
  assert.equal((await loadOrCreateCa(d)).fingerprint256, rotated.fingerprint256);
  const names = readdirSync(rotated.paths.dir);
  const pemBak = names.filter((n) => /^ca\.pem\..+\.bak$/.test(n));
  const keyBak = names.filter((n) => /^ca\.key\..+\.bak$/.test(n));
  assert.equal(pemBak.length, 1, names.join(','));
  assert.equal(keyBak.length, 1, names.join(','));
  assert.equal(readFileSync(join(rotated.paths.dir, pemBak[0]!), 'utf8'), old.certPem);
  assert.equal(readFileSync(join(rotated.paths.dir, keyBak[0]!), 'utf8'), old.keyPem);
  assert.equal(statSync(rotated.paths.key).mode & 0o777, 0o600);
  assert.ok(!existsSync(rotated.paths.leavesDir) || readdirSync(rotated.paths.leavesDir).length === 0);

  // New leaves chain to the new CA, with a new shared leaf key.
  const fresh = new LeafIssuer(rotated);
  const leaf = await fresh.getCertificate('example.test');
  assert.equal(fresh.stats.issued, 1);
  assert.ok(new X509Certificate(leaf.certPem).verify(new X509Certificate(rotated.certPem).publicKey));
  assert.notEqual(readFileSync(rotated.paths.leafKey, 'utf8'), oldLeafKey);

  // A second rotation in the same second keeps both generations of backups.
  await rotateCa(d);
  assert.equal(readdirSync(rotated.paths.dir).filter((n) => /^ca\.pem\..+\.bak$/.test(n)).length, 2);
});

test('rotate repairs a CA that refuses to load', async () => {
  const d = await tmp();
  const ca = await loadOrCreateCa(d);
  rmSync(ca.paths.key);
  mkdirSync(ca.paths.key);
  await assertRefused(loadOrCreateCa(d), /EISDIR/);
  const rotated = await rotateCa(d);
  assert.equal((await loadOrCreateCa(d)).fingerprint256, rotated.fingerprint256);
});
