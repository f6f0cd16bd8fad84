import { randomBytes, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

const SHA256_RSA = forge.pki.oids.sha256WithRSAEncryption!;

/** Random positive 16-byte serial number, as forge's hex string. */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive and exactly 16 bytes long in DER
  return b.toString('hex');
}

/** A UTF8String attribute (PrintableString cannot hold '_' or '*'). */
export function utf8Attr(shortName: 'CN' | 'O', value: string): forge.pki.CertificateField {
  return { shortName, value, valueTagClass: forge.asn1.Type.UTF8 } as unknown as forge.pki.CertificateField;
}

/**
 * Signs `cert` (built with forge, publicKey/subject/issuer/extensions set)
 * with SHA-256 + RSA using OpenSSL through Node's crypto, and returns its PEM.
 * forge only builds the DER; its pure-JS RSA is never used.
 */
export function signCertificate(cert: forge.pki.Certificate, issuerKey: KeyObject): string {
  cert.siginfo.algorithmOid = SHA256_RSA;
  cert.signatureOid = SHA256_RSA;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 })
    .getTBSCertificate(cert);
  const tbsDer = forge.asn1.toDer(tbs).getBytes();
  const sig = sign('sha256', Buffer.from(tbsDer, 'binary'), issuerKey);
  cert.signature = sig.toString('binary');
  return forge.pki.certificateToPem(cert);
}
