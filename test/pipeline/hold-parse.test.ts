// How the hold step reads the command list of a spooled push (a body past the spool threshold):
// only its prefix, but all of the commands and push options, however many, up to a bound.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { encodePkt, GitProtocolError } from '../../main/git';
import { HeldBody } from '../../main/review/held-body';
import { CommandsTooLongError, parsePush } from '../../main/pipeline/stages/hold';
import { makeTempDir, removeDir } from '../helpers/tmp';

const dirs: string[] = [];
after(async () => { for (const d of dirs) await removeDir(d); });

const ZERO = '0'.repeat(40);
const OID = 'a'.repeat(40);

/** A pack header and checksum around `filler` bytes: enough to look like a pack at the front. */
function fakePack(filler: number): Buffer {
  const body = Buffer.concat([Buffer.from('5041434b0000000200000001', 'hex'), Buffer.alloc(filler, 0x78)]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function commands(n: number, caps = 'report-status agent=git/2.39.5'): Buffer {
  return Buffer.concat([
    encodePkt(`${ZERO} ${OID} refs/heads/main\0${caps}\n`),
    ...Array.from({ length: n }, (_, i) => encodePkt(`${ZERO} ${OID} refs/tags/release-candidate-build-${i}\n`)),
    Buffer.from('0000'),
  ]);
}

async function spooled(body: Buffer): Promise<HeldBody> {
  const dir = await makeTempDir('airlock-hold-parse-');
  dirs.push(dir);
  const held = await HeldBody.read(Readable.from([body]), { maxBytes: 1 << 30, spoolThreshold: 64 * 1024, spoolDir: dir });
  assert.equal(held.inMemory, null, 'spooled');
  return held;
}

test('a spooled push with more than 1 MiB of ref-update commands is parsed in full', async () => {
  const cmds = commands(12_000);
  assert.ok(cmds.length > 1024 * 1024);
  const body = await spooled(Buffer.concat([cmds, fakePack(2 * 1024 * 1024)]));
  try {
    const p = await parsePush(body);
    assert.equal(p.commands.length, 12_001);
    assert.equal(p.commands[12_000]!.ref, 'refs/tags/release-candidate-build-11999');
    assert.equal(p.packOffset, cmds.length);
    assert.equal(p.hasPack, true);
    assert.deepEqual(p.capabilities, ['report-status', 'agent=git/2.39.5']);
  } finally {
    await body.dispose();
  }
});

test('push options after a long command list are read too', async () => {
  const cmds = commands(12_000, 'report-status push-options agent=git/2.39.5');
  const opts = Buffer.concat([encodePkt('ci.skip\n'), Buffer.from('0000')]);
  const body = await spooled(Buffer.concat([cmds, opts, fakePack(2 * 1024 * 1024)]));
  try {
    const p = await parsePush(body);
    assert.equal(p.commands.length, 12_001);
    assert.deepEqual(p.pushOptions, ['ci.skip']);
    assert.equal(p.packOffset, cmds.length + opts.length);
  } finally {
    await body.dispose();
  }
});

test('a spooled body that is commands alone (deletions, no pack) is parsed whole', async () => {
  const cmds = Buffer.concat([
    ...Array.from({ length: 2000 }, (_, i) => encodePkt(`${OID} ${ZERO} refs/tags/old-${i}${i === 0 ? '\0report-status' : ''}\n`)),
    Buffer.from('0000'),
  ]);
  const body = await spooled(cmds);
  try {
    const p = await parsePush(body);
    assert.equal(p.commands.length, 2000);
    assert.equal(p.hasPack, false);
  } finally {
    await body.dispose();
  }
});

test('commands past the bound are refused with a sentence saying so; malformed ones as before', async () => {
  const body = await spooled(Buffer.concat([commands(12_000), fakePack(1024)]));
  try {
    await assert.rejects(parsePush(body, 1024 * 1024), (e: unknown) => {
      assert.ok(e instanceof CommandsTooLongError, String(e));
      assert.equal((e as Error).message, 'its ref-update commands and push options take more than 1 MiB, more than Airlock reads; push fewer refs at a time');
      return true;
    });
  } finally {
    await body.dispose();
  }
  const cmds = commands(2000);
  const first = commands(0).length - 4; // the first command's pkt
  const bad = await spooled(Buffer.concat([cmds.subarray(0, first), Buffer.from('zzzz'), cmds.subarray(first), fakePack(2 * 1024 * 1024)]));
  try {
    await assert.rejects(parsePush(bad), (e: unknown) => e instanceof GitProtocolError && /^Bad pkt-line length "zzzz" at byte \d+/.test((e as Error).message));
  } finally {
    await bad.dispose();
  }
  const noPack = await spooled(Buffer.concat([cmds, Buffer.from('0000'), Buffer.alloc(2 * 1024 * 1024, 0x78)]));
  try {
    await assert.rejects(parsePush(noPack), /The push has no pack where one was expected\./);
  } finally {
    await noPack.dispose();
  }
});
