import { randomBytes } from 'node:crypto';

/**
 * The DER of a leaf certificate, written straight from a fixed template.
 *
 * Every leaf Airlock issues has the same shape; only the serial, the validity,
 * the common name and the one subjectAltName differ. node-forge builds the same
 * bytes through a generic ASN.1 object tree in about 1.3 ms per leaf on this
 * machine, which was most of the wait for the first request to a new host;
 * writing the template takes a few microseconds (docs/decisions.md). The CA
 * certificate, made once per install, is still built with forge (`ca.ts`).
 */

/** One DER element: tag, definite length, contents. */
export function der(tag: number, ...contents: Buffer[]): Buffer {
  const body = contents.length === 1 ? contents[0]! : Buffer.concat(contents);
  const n = body.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else if (n < 0x100) head = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) head = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else head = Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([head, body]);
}

/** The children of a constructed DER element (definite lengths only), as slices of `el`. */
export function derChildren(el: Buffer): Buffer[] {
  const { start, end } = header(el, 0);
  const out: Buffer[] = [];
  let at = start;
  while (at < end) {
    const h = header(el, at);
    out.push(el.subarray(at, h.end));
    at = h.end;
  }
  if (at !== end) throw new Error('malformed DER');
  return out;
}

function header(buf: Buffer, at: number): { start: number; end: number } {
  if (at + 2 > buf.length) throw new Error('malformed DER');
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (k === 0 || k > 3 || start + k > buf.length) throw new Error('malformed DER');
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + buf[start + i]!;
    start += k;
  }
  if (start + len > buf.length) throw new Error('malformed DER');
  return { start, end: start + len };
}

const SEQ = 0x30;
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

/** AlgorithmIdentifier sha256WithRSAEncryption (1.2.840.113549.1.1.11) with NULL parameters. */
export const SHA256_WITH_RSA = hex('300d 0609 2a864886f70d01010b 0500');
const VERSION_3 = hex('a003 020102');
const OID_CN = hex('0603 550403');
const OID_BASIC_CONSTRAINTS = hex('0603 551d13');
const OID_KEY_USAGE = hex('0603 551d0f');
const OID_EXT_KEY_USAGE = hex('0603 551d25');
const OID_SUBJECT_ALT_NAME = hex('0603 551d11');
const OID_AUTHORITY_KEY_ID = hex('0603 551d23');
const OID_SERVER_AUTH = hex('0608 2b06010505070301');
const TRUE = hex('0101ff');

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), to the second. */
export function derTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return y >= 1950 && y < 2050
    ? der(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'ascii'))
    : der(0x18, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'ascii'));
}

export interface LeafTemplate {
  /** The CA certificate's subject Name, byte for byte (the leaf's issuer). */
  issuerName: Buffer;
  /** The CA's subjectKeyIdentifier (the leaf's authorityKeyIdentifier). */
  caKeyId: Buffer;
  /** DER SubjectPublicKeyInfo of the shared leaf key. */
  spki: Buffer;
}

export interface LeafFields {
  /** Lower-case host name or IP literal, already validated (certs/hostname.ts). */
  commonName: string;
  altName: { type: 'dns'; value: string } | { type: 'ip'; bytes: Buffer };
  notBefore: Date;
  notAfter: Date;
}

/**
 * The TBSCertificate of a leaf: v3, 16-byte random positive serial, sha256WithRSA,
 * the CA's name as issuer, CN = host, and the extensions basicConstraints (cA false),
 * keyUsage digitalSignature (critical), extKeyUsage serverAuth, subjectAltName
 * (dNSName or iPAddress) and authorityKeyIdentifier.
 */
export function leafTbs(t: LeafTemplate, f: LeafFields): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, exactly 16 bytes in DER
  const subject = der(SEQ, der(0x31, der(SEQ, OID_CN, der(0x0c, Buffer.from(f.commonName.slice(0, 64), 'utf8')))));
  const altName = f.altName.type === 'dns'
    ? der(0x82, Buffer.from(f.altName.value, 'ascii'))
    : der(0x87, f.altName.bytes);
  const ext = (oid: Buffer, value: Buffer, critical = false) =>
    critical ? der(SEQ, oid, TRUE, der(0x04, value)) : der(SEQ, oid, der(0x04, value));
  const extensions = der(0xa3, der(SEQ,
    ext(OID_BASIC_CONSTRAINTS, der(SEQ)),
    ext(OID_KEY_USAGE, hex('03020780'), true),
    ext(OID_EXT_KEY_USAGE, der(SEQ, OID_SERVER_AUTH)),
    ext(OID_SUBJECT_ALT_NAME, der(SEQ, altName)),
    ext(OID_AUTHORITY_KEY_ID, der(SEQ, der(0x80, t.caKeyId))),
  ));
  return der(SEQ,
    VERSION_3,
    der(0x02, serial),
    SHA256_WITH_RSA,
    t.issuerName,
    der(SEQ, derTime(f.notBefore), derTime(f.notAfter)),
    subject,
    t.spki,
    extensions,
  );
}

/** The signed certificate as PEM. */
export function certificatePem(tbs: Buffer, signature: Buffer): string {
  const cert = der(SEQ, tbs, SHA256_WITH_RSA, der(0x03, Buffer.from([0]), signature));
  const b64 = cert.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}
