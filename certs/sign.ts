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

/**
 * Like signCertificate, for a subject key forge cannot hold (ECDSA): the
 * certificate is built with a placeholder RSA key, its SubjectPublicKeyInfo is
 * replaced by `spkiDer`, and the TBSCertificate is signed natively, off the
 * event loop.
 */
export async function signCertificateWithSpki(cert: forge.pki.Certificate, spkiDer: Buffer, issuerKey: KeyObject): Promise<string> {
  cert.siginfo.algorithmOid = SHA256_RSA;
  cert.signatureOid = SHA256_RSA;
  const asn1 = forge.asn1;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions
  (tbs.value as forge.asn1.Asn1[])[6] = asn1.fromDer(forge.util.createBuffer(spkiDer.toString('binary')));
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  // With a callback the RSA signature runs on libuv's thread pool: the event loop goes on
  // with the upstream handshake and other tunnels meanwhile.
  const sig = await new Promise<Buffer>((resolve, reject) =>
    sign('sha256', tbsDer, issuerKey, (err, s) => (err ? reject(err) : resolve(s))));
  const certAsn1 = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(SHA256_RSA).getBytes()),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + sig.toString('binary')),
  ]);
  const der = Buffer.from(asn1.toDer(certAsn1).getBytes(), 'binary');
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}
