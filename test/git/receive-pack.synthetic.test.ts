// parseReceivePackRequest on hand-built bodies (the real ones are in receive-pack.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseReceivePackRequest, encodePkt, FLUSH, GitProtocolError, checkPack } from '../../main/git/index';

const Z = '0'.repeat(40);
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

function emptyPack(version = 2, count = 0): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(version, 4);
  head.writeUInt32BE(count, 8);
  return Buffer.concat([head, createHash('sha1').update(head).digest()]);
}

function body(lines: string[], extra: Buffer[] = []): Buffer {
  return Buffer.concat([...lines.map((l) => encodePkt(l)), FLUSH, ...extra]);
}

function rejects(buf: Buffer, re: RegExp): void {
  assert.throws(() => parseReceivePackRequest(buf), (e: unknown) => {
    assert.ok(e instanceof GitProtocolError, String(e));
    assert.match((e as Error).message, re);
    return true;
  });
}

test('shallow lines, capabilities, push options and pack', () => {
  const pack = emptyPack();
  const buf = Buffer.concat([
    body([`shallow ${A}\n`, `${Z} ${B} refs/heads/new\0 report-status-v2 side-band push-options atomic agent=git/2.39.5`, `${A} ${Z} refs/heads/old`]),
    encodePkt('ci.skip\n'), encodePkt('reviewer=alice'), FLUSH, pack,
  ]);
  const r = parseReceivePackRequest(buf);
  assert.deepEqual(r.shallow, [A]);
  assert.deepEqual(r.commands, [{ oldOid: Z, newOid: B, ref: 'refs/heads/new' }, { oldOid: A, newOid: Z, ref: 'refs/heads/old' }]);
  assert.deepEqual(r.capabilities, ['report-status-v2', 'side-band', 'push-options', 'atomic', 'agent=git/2.39.5']);
  assert.deepEqual(r.pushOptions, ['ci.skip', 'reviewer=alice']);
  assert.equal(r.sideBand, 'side-band');
  assert.equal(r.reportStatus, true);
  assert.equal(r.agent, 'git/2.39.5');
  assert.equal(r.packOffset, buf.length - pack.length);
  assert.equal(r.hasPack, true);
  assert.equal(r.packObjectCount, 0);
  assert.equal(r.packVersion, 2);
  assert.equal(r.isProbe, false);
});

test('delete-only push has no pack; probe is exactly 0000', () => {
  const r = parseReceivePackRequest(body([`${A} ${Z} refs/tags/v1\0report-status`]));
  assert.equal(r.hasPack, false);
  assert.equal(r.sideBand, null);
  assert.equal(r.agent, null);
  const p = parseReceivePackRequest(Buffer.from('0000'));
  assert.equal(p.isProbe, true);
  assert.deepEqual(p.commands, []);
  rejects(Buffer.from('00000000'), /no ref update commands/);
});

test('sha256 object format', () => {
  const z = '0'.repeat(64);
  const n = 'c'.repeat(64);
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1'); head.writeUInt32BE(3, 4);
  const pack = Buffer.concat([head, createHash('sha256').update(head).digest()]);
  const r = parseReceivePackRequest(body([`${z} ${n} refs/heads/x\0report-status object-format=sha256`], [pack]));
  assert.equal(r.objectFormat, 'sha256');
  assert.equal(r.packVersion, 3);
  rejects(body([`${Z} ${B} refs/heads/x\0object-format=sha256`], [pack]), /Bad object id/);
});

test('bad commands are GitProtocolErrors', () => {
  const pack = emptyPack();
  rejects(body([`shallow ${A}`]), /no ref update commands/);
  rejects(Buffer.concat([encodePkt(`${Z} ${B} refs/heads/x`)]), /flush-pkt/);
  rejects(body([`${Z} ${B.slice(1)} refs/heads/x`], [pack]), /Bad object id/);
  rejects(body([`${Z} ${B.toUpperCase()} refs/heads/x`], [pack]), /Bad object id/);
  rejects(body([`${Z} ${B}`], [pack]), /Malformed/);
  for (const ref of ['heads/x', 'refs/heads/../x', 'refs/heads/a b', 'refs/heads/a\tb', 'refs/heads/x.lock', 'refs/heads/a~1', 'refs/heads/']) {
    rejects(body([`${Z} ${B} ${ref}`], [pack]), /Bad ref name/);
  }
  rejects(body([`${Z} ${B} refs/heads/x`, `${Z} ${B} refs/heads/x`], [pack]), /twice/);
  rejects(body([`${Z} ${Z} refs/heads/x`]), /two zero/);
  rejects(body([`${Z} ${B} refs/heads/x`]), /no pack/);
  rejects(body([`${Z} ${B} refs/heads/x\0push-options`], [encodePkt('opt')]), /push options/);
  rejects(body([`${Z} ${B} refs/heads/x`, `shallow ${A}`], [pack]), /shallow/);
  rejects(body([`push-cert\0report-status`], [pack]), /Signed pushes/);
  rejects(Buffer.concat([encodePkt(Buffer.concat([Buffer.from(`${Z} ${B} refs/heads/`), Buffer.from([0xff, 0xfe])])), FLUSH, pack]), /UTF-8/);
});

test('pack header and checksum validation', () => {
  const cmd = `${Z} ${B} refs/heads/x`;
  const pack = emptyPack(2, 0);
  rejects(body([cmd], [Buffer.from('KCAP'), pack.subarray(4)]), /not a pack/);
  rejects(body([cmd], [pack.subarray(0, 20)]), /Truncated or corrupt pack/);
  const flipped = Buffer.from(pack); flipped[10] ^= 1;
  rejects(body([cmd], [flipped]), /Truncated or corrupt pack/);
  rejects(body([cmd], [emptyPack(4)]), /unsupported version 4/);
  assert.deepEqual(checkPack(emptyPack(3, 7)), { version: 3, objectCount: 7 });
});
