// A throw-away PKI for loopback tests: a test CA, a server leaf it signed, and an unrelated
// self-signed "bad" leaf with the same names. Generated once per process and cached.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';
import { makeTempDir } from './tmp';

export interface TestPki {
  /** PEM of the test CA certificate (trust this one). */
  caPem: string;
  /** Path of a file holding caPem (for curl --cacert, git http.sslCAInfo, NODE_EXTRA_CA_CERTS...). */
  caPath: string;
  /** PEM of the test CA's private key (PKCS#8), in case a test must sign more leaves. */
  caKeyPem: string;
  /** Server leaf signed by the test CA. SAN: DNS localhost, DNS *.localhost, IP 127.0.0.1, IP ::1. */
  serverKeyPem: string;
  serverCertPem: string;
  /** Self-signed leaf NOT signed by the test CA; same SANs. */
  badCertPem: string;
  badKeyPem: string;
  /** Temp directory holding ca.pem, server.pem, server-key.pem, bad.pem, bad-key.pem. Removed at process exit. */
  dir: string;
  serverCertPath: string;
  serverKeyPath: string;
  badCertPath: string;
  badKeyPath: string;
}

const SANS = [
  { type: 2, value: 'localhost' },
  { type: 2, value: '*.localhost' },
  { type: 7, ip: '127.0.0.1' },
  { type: 7, ip: '::1' },
];

interface KeyPair { privatePem: string; publicPem: string }

function newKey(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function pkcs8(k: KeyPair): string {
  const f = forge.pki.privateKeyFromPem(k.privatePem);
  return forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(f)));
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(now + 2 * 365 * 24 * 3600 * 1000);
}

function makeCa(key: KeyPair): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.serialNumber = serial();
  validity(cert);
  const attrs = [
    { name: 'commonName', value: 'Airlock Test CA' },
    { name: 'organizationName', value: 'Airlock tests' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(key.privatePem), forge.md.sha256.create());
  return cert;
}

function makeLeaf(key: KeyPair, cn: string, issuer: { cert: forge.pki.Certificate; key: KeyPair } | null): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(key.publicPem);
  cert.serialNumber = serial();
  validity(cert);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : [{ name: 'commonName', value: cn }]);
  const exts: any[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: SANS },
    { name: 'subjectKeyIdentifier' },
  ];
  if (issuer) {
    exts.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuer.cert.generateSubjectKeyIdentifier().getBytes() });
  }
  cert.setExtensions(exts);
  cert.sign(forge.pki.privateKeyFromPem((issuer ? issuer.key : key).privatePem), forge.md.sha256.create());
  return cert;
}

async function generate(): Promise<TestPki> {
  const caKey = newKey();
  const serverKey = newKey();
  const badKey = newKey();
  const ca = makeCa(caKey);
  const server = makeLeaf(serverKey, 'localhost', { cert: ca, key: caKey });
  const bad = makeLeaf(badKey, 'localhost', null);

  const dir = await makeTempDir('airlock-test-pki-');
  process.once('exit', () => {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* ignore */ }
  });
  const pki: TestPki = {
    caPem: forge.pki.certificateToPem(ca),
    caKeyPem: pkcs8(caKey),
    caPath: join(dir, 'ca.pem'),
    serverCertPem: forge.pki.certificateToPem(server),
    serverKeyPem: pkcs8(serverKey),
    badCertPem: forge.pki.certificateToPem(bad),
    badKeyPem: pkcs8(badKey),
    dir,
    serverCertPath: join(dir, 'server.pem'),
    serverKeyPath: join(dir, 'server-key.pem'),
    badCertPath: join(dir, 'bad.pem'),
    badKeyPath: join(dir, 'bad-key.pem'),
  };
  await Promise.all([
    writeFile(pki.caPath, pki.caPem),
    writeFile(pki.serverCertPath, pki.serverCertPem),
    writeFile(pki.serverKeyPath, pki.serverKeyPem, { mode: 0o600 }),
    writeFile(pki.badCertPath, pki.badCertPem),
    writeFile(pki.badKeyPath, pki.badKeyPem, { mode: 0o600 }),
  ]);
  return pki;
}

let cached: Promise<TestPki> | undefined;

/** The per-process test PKI (generated on first call, then cached). */
export function createTestPki(): Promise<TestPki> {
  if (!cached) {
    cached = generate();
    cached.catch(() => { cached = undefined; });
  }
  return cached;
}
