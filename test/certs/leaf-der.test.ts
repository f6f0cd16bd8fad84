import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { certificatePem, der, derChildren, derTime, leafTbs, type LeafFields, type LeafTemplate } from '../../certs/leaf-der';
import { runCommand } from '../helpers';

test('der writes short and long definite lengths that derChildren reads back', () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 100_000]) {
    const inner = der(0x04, Buffer.alloc(n, 7));
    const outer = der(0x30, inner, der(0x05));
    const [a, b] = derChildren(outer);
    assert.ok(a!.equals(inner), `length ${n}`);
    assert.deepEqual([...b!], [0x05, 0x00]);
  }
  assert.throws(() => derChildren(Buffer.from([0x30, 0x05, 0x04, 0x01])), /malformed DER/);
  assert.throws(() => derChildren(Buffer.from([0x30, 0x84, 0, 0, 0, 1, 0])), /malformed DER/);
});

test('times are UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280)', () => {
  assert.equal(derTime(new Date('2049-12-31T23:59:59.900Z')).toString('latin1'), '\x17\x0d491231235959Z');
  assert.equal(derTime(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
  assert.equal(derTime(new Date('2026-03-04T05:06:07Z')).toString('latin1'), '\x17\x0d260304050607Z');
});

const caKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const leafKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
// A CA name with a non-ASCII UTF8String, as the real CA's machine name may have.
const issuerName = der(0x30, der(0x31, der(0x30, Buffer.from('0603550403', 'hex'), der(0x0c, Buffer.from('Airlock Local CA (pc-ü)', 'utf8')))));
const template: LeafTemplate = {
  issuerName,
  caKeyId: Buffer.alloc(20, 0xab),
  spki: createPublicKey(leafKey.privateKey).export({ type: 'spki', format: 'der' }),
};

function issue(f: LeafFields): X509Certificate {
  const tbs = leafTbs(template, f);
  return new X509Certificate(certificatePem(tbs, sign('sha256', tbs, caKeys.privateKey)));
}

test('a leaf written from the template parses, verifies, and carries the fields it was given', async () => {
  const notBefore = new Date('2049-06-01T00:00:00Z');
  const notAfter = new Date('2050-07-02T03:04:05Z'); // crosses the UTCTime/GeneralizedTime boundary
  const dns = issue({ commonName: 'api.example.test', altName: { type: 'dns', value: 'api.example.test' }, notBefore, notAfter });
  assert.equal(dns.subject, 'CN=api.example.test');
  assert.equal(dns.issuer, 'CN=Airlock Local CA (pc-ü)');
  assert.equal(dns.subjectAltName, 'DNS:api.example.test');
  assert.equal(new Date(dns.validFrom).toISOString(), notBefore.toISOString());
  assert.equal(new Date(dns.validTo).toISOString(), notAfter.toISOString());
  assert.equal(dns.ca, false);
  assert.deepEqual(dns.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.ok(dns.verify(caKeys.publicKey));
  assert.ok(dns.checkPrivateKey(leafKey.privateKey));
  assert.match(dns.serialNumber, /^[0-9A-F]{32}$/);
  assert.ok(parseInt(dns.serialNumber[0]!, 16) < 8, 'positive serial');

  const ip = issue({ commonName: '2001:db8::1', altName: { type: 'ip', bytes: Buffer.from('20010db8000000000000000000000001', 'hex') }, notBefore, notAfter });
  assert.equal(ip.subjectAltName, 'IP Address:2001:DB8:0:0:0:0:0:1');

  const text = await runCommand('openssl', ['x509', '-noout', '-text'], { input: dns.toString() });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /X509v3 Basic Constraints:\s+CA:FALSE/);
  assert.match(text.stdout, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(text.stdout, /X509v3 Authority Key Identifier:\s+(keyid:)?AB:AB:AB/);
  assert.match(text.stdout, /Not After : Jul  2 03:04:05 2050 GMT/);
});

test('a long host name keeps its full subjectAltName; the common name is cut to 64 characters', () => {
  const host = `${'a'.repeat(63)}.${'b'.repeat(63)}.example.test`;
  const x = issue({ commonName: host, altName: { type: 'dns', value: host }, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) });
  assert.equal(x.subjectAltName, `DNS:${host}`);
  assert.equal(x.subject, `CN=${host.slice(0, 64)}`);
});

test('two leaves never share a serial', () => {
  const f: LeafFields = { commonName: 'x.test', altName: { type: 'dns', value: 'x.test' }, notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000) };
  const serials = new Set(Array.from({ length: 50 }, () => issue(f).serialNumber));
  assert.equal(serials.size, 50);
});
