// Throwaway PKI for the benchmark upstream: one CA and one server certificate
// valid for 127.0.0.1 … 127.0.0.<n> and localhost. Keys come from Node's crypto;
// node-forge does the X.509 signing. Nothing here is meant to outlive one run.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

export interface BenchPki {
  /** PEM of the CA certificate (what clients and proxies must trust). */
  caPem: string;
  /** Path of ca.pem inside the directory given to makeBenchPki. */
  caPath: string;
  certPath: string;
  keyPath: string;
}

function rsaKeyPair(): { forgePriv: forge.pki.rsa.PrivateKey; forgePub: forge.pki.rsa.PublicKey; privPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    forgePriv: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey,
    forgePub: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
    privPem: privateKey,
  };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 7 * 24 * 60 * 60 * 1000);
}

/** Upstream IPs used by the bench: 127.0.0.1 … 127.0.0.<count>. */
export function upstreamIps(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.0.${i + 1}`);
}

export function makeBenchPki(dir: string, ips: string[]): BenchPki {
  const ca = rsaKeyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = ca.forgePub;
  caCert.serialNumber = serial();
  validity(caCert);
  const caName = [{ name: 'commonName', value: 'Airlock bench throwaway CA' }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(ca.forgePriv, forge.md.sha256.create());

  const leaf = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = leaf.forgePub;
  cert.serialNumber = serial();
  validity(cert);
  cert.setSubject([{ name: 'commonName', value: 'airlock-bench-upstream' }]);
  cert.setIssuer(caName);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [{ type: 2, value: 'localhost' }, ...ips.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.forgePriv, forge.md.sha256.create());

  const caPem = forge.pki.certificateToPem(caCert);
  const caPath = join(dir, 'ca.pem');
  const certPath = join(dir, 'upstream-cert.pem');
  const keyPath = join(dir, 'upstream-key.pem');
  writeFileSync(caPath, caPem);
  writeFileSync(certPath, forge.pki.certificateToPem(cert));
  writeFileSync(keyPath, leaf.privPem, { mode: 0o600 });
  return { caPem, caPath, certPath, keyPath };
}
