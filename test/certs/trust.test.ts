import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { LeafIssuer, loadOrCreateCa, writeTrustBundle, type CertAuthority } from '../../certs/index';
import { defaultSystemCaFiles, nodeReadsSystemStore, pemCertificates, SYSTEM_CA_FILES, systemRoots, systemStoreWarning, uniqueCertificates } from '../../certs/trust';
import { createTestPki } from '../helpers/test-ca';
import { makeTempDir, removeDir, runCommand } from '../helpers';

const dirs: string[] = [];
let ca: CertAuthority;
let server: Server | undefined;
before(async () => {
  const d = await makeTempDir('airlock-certs-trust-');
  dirs.push(d);
  ca = await loadOrCreateCa(d);
});
after(async () => {
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  await Promise.all(dirs.map((d) => removeDir(d)));
});

test('the bundle holds the public roots plus the Airlock CA', () => {
  const path = writeTrustBundle(ca);
  assert.equal(path, ca.paths.bundle);
  const text = readFileSync(path, 'utf8');
  assert.ok(text.includes(ca.certPem.trim()));
  assert.ok(text.includes(rootCertificates[0]!.trim()));
  const certs = pemCertificates(text);
  assert.ok(certs.length >= rootCertificates.length + 1, `${certs.length} certificates`);
  assert.equal(uniqueCertificates(certs).length, certs.length, 'each certificate once');
  const sysFile = SYSTEM_CA_FILES.find((f) => existsSync(f));
  if (sysFile) {
    const sys = pemCertificates(readFileSync(sysFile, 'utf8'));
    assert.equal(certs.length, uniqueCertificates([...rootCertificates, ...sys]).length + 1);
    assert.ok(text.includes(sys[sys.length - 1]!), 'the system store is in the bundle');
  }
  assert.equal(statSync(path).mode & 0o777, 0o644);
  assert.equal(writeTrustBundle(ca), path, 'rewriting is fine');
});

test('openssl verify and curl accept Airlock leaves with the bundle', async () => {
  const bundle = writeTrustBundle(ca);
  const issuer = new LeafIssuer(ca);
  const leafFile = join(dirs[0]!, 'leaf.pem');
  writeFileSync(leafFile, (await issuer.getCertificate('bundle.example.test')).certPem);
  const v = await runCommand('openssl', ['verify', '-CAfile', bundle, leafFile], { timeoutMs: 20_000 });
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /leaf\.pem: OK/);

  server = createServer({
    SNICallback: (name, cb) => { issuer.getSecureContext(name).then((c) => cb(null, c), (e: Error) => cb(e)); },
  }, (_req, res) => { res.end('through airlock\n'); });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const env = { ...process.env };
  for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) delete env[k];
  const curl = await runCommand('curl', ['-sS', '--max-time', '15', '--noproxy', '*', '--cacert', bundle,
    '--resolve', `bundle.example.test:${port}:127.0.0.1`, `https://bundle.example.test:${port}/`],
  { env, timeoutMs: 20_000 });
  assert.equal(curl.code, 0, curl.stderr);
  assert.equal(curl.stdout, 'through airlock\n');

  // Control: without the bundle curl refuses the same server.
  const plain = await runCommand('curl', ['-sS', '--max-time', '15', '--noproxy', '*', '--cacert', rootsOnly(),
    '--resolve', `bundle.example.test:${port}:127.0.0.1`, `https://bundle.example.test:${port}/`],
  { env, timeoutMs: 20_000 });
  assert.notEqual(plain.code, 0);
});

function rootsOnly(): string {
  const file = join(dirs[0]!, 'roots-only.pem');
  writeFileSync(file, rootCertificates.join('\n'));
  return file;
}

test('systemRoots: the first readable system store file, then NODE_EXTRA_CA_CERTS, each certificate once', async () => {
  const lf = (pem: string) => pem.replace(/\r\n/g, '\n');
  const a = { caPem: lf((await createTestPki()).caPem) }; // two different CAs: the test PKI's and this file's Airlock CA
  const b = { caPem: lf(ca.certPem) };
  assert.notEqual(a.caPem, b.caPem);
  const d = dirs[0]!;
  const store = join(d, 'os-store.pem');
  writeFileSync(store, `# a system store\n${a.caPem}${a.caPem}`); // a duplicate, as distribution stores have
  const other = join(d, 'other-store.pem');
  writeFileSync(other, b.caPem);
  const extra = join(d, 'extra.pem');
  writeFileSync(extra, b.caPem.replace(/\n/g, '\r\n'));

  assert.deepEqual(systemRoots({ files: [join(d, 'missing.pem'), store, other], env: {} }), [a.caPem.trim()]);
  assert.deepEqual(systemRoots({ files: [store], env: { NODE_EXTRA_CA_CERTS: extra } }), [a.caPem.trim(), b.caPem.trim()]);
  assert.deepEqual(systemRoots({ files: [], env: { NODE_EXTRA_CA_CERTS: extra } }), [b.caPem.trim()], 'files: [] reads no store');
  assert.deepEqual(systemRoots({ files: [], env: { NODE_EXTRA_CA_CERTS: join(d, 'missing.pem') } }), [], 'an unreadable NODE_EXTRA_CA_CERTS adds nothing');
  assert.deepEqual(systemRoots({ files: [store, other], env: { NODE_EXTRA_CA_CERTS: store } }), [a.caPem.trim()]);
  // A shell set up by `airlock env` names the Airlock CA in NODE_EXTRA_CA_CERTS: upstreams never get trusted through it.
  assert.deepEqual(systemRoots({ files: [store], env: { NODE_EXTRA_CA_CERTS: extra }, distrust: [ca.certPem] }), [a.caPem.trim()]);
});

test('Windows: the POSIX store paths are not read (C:\\etc\\ssl\\… is a folder any local user may create); elsewhere they are', () => {
  assert.deepEqual(defaultSystemCaFiles('win32'), []);
  assert.deepEqual(defaultSystemCaFiles('linux'), SYSTEM_CA_FILES);
  assert.deepEqual(defaultSystemCaFiles('darwin'), SYSTEM_CA_FILES);
  // On this Linux machine a default read finds the distribution's store; asked as Windows it reads no
  // file. (Node ≥ 22.15 then adds what it reads from the OS store itself: here, the same store.)
  assert.ok(SYSTEM_CA_FILES.some((f) => existsSync(f)), 'this test needs a system store file here');
  assert.ok(systemRoots({ env: {}, platform: 'linux' }).length > 0);
  if (!nodeReadsSystemStore()) assert.deepEqual(systemRoots({ env: {}, platform: 'win32' }), []);
});

test('a warning where the OS store is not a PEM file and this Node cannot read it; none on Linux or where Node reads it', () => {
  assert.match(systemStoreWarning('darwin', false)!, /cannot read the macOS keychain: .*--upstream-ca FILE/);
  assert.match(systemStoreWarning('win32', false)!, /cannot read the Windows certificate store/);
  assert.equal(systemStoreWarning('darwin', true), null);
  assert.equal(systemStoreWarning('linux', false), null);
});
