// parseReceivePackRequest on real bodies: golden fixtures, fresh captures, the probe, corruption.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { parseReceivePackRequest, GitProtocolError, analysePush, cleanupQuarantine } from '../../main/git/index';
import { FIXTURE_NAMES, generateFixtures } from './fixtures-gen';
import { Scenario } from './scenario';

const FIX = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'fixtures', 'git');

interface Manifest { [name: string]: { bytes: number; sha256: string; commands: unknown; capabilities: string[]; packOffset: number; hasPack: boolean; packObjectCount: number | null } }

async function golden(): Promise<{ manifest: Manifest; bodies: Map<string, Buffer> }> {
  const manifest = JSON.parse(await readFile(join(FIX, 'fixtures.json'), 'utf8')) as Manifest;
  const bodies = new Map<string, Buffer>();
  for (const n of FIXTURE_NAMES) bodies.set(n, await readFile(join(FIX, `${n}.bin`)));
  return { manifest, bodies };
}

function assertProtocolError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GitProtocolError, String(e));
    assert.match((e as Error).message, re);
    return true;
  });
}

test('golden bodies parse to the recorded commands, capabilities and packs', async () => {
  const { manifest, bodies } = await golden();
  for (const [name, body] of bodies) {
    const m = manifest[name];
    assert.ok(body.length < 50 * 1024);
    assert.equal(createHash('sha256').update(body).digest('hex'), m.sha256, name);
    const r = parseReceivePackRequest(body);
    assert.deepEqual(r.commands, m.commands, name);
    assert.deepEqual(r.capabilities, m.capabilities, name);
    assert.equal(r.packOffset, m.packOffset, name);
    assert.equal(r.hasPack, m.hasPack, name);
    assert.equal(r.packObjectCount, m.packObjectCount, name);
    assert.equal(r.sideBand, 'side-band-64k');
    assert.equal(r.reportStatus, true);
    assert.match(r.agent!, /^git\/2\./);
    assert.equal(r.isProbe, false);
    if (r.hasPack) assert.equal(body.toString('latin1', r.packOffset, r.packOffset + 4), 'PACK');
  }
  const two = parseReceivePackRequest(bodies.get('two-refs')!);
  assert.deepEqual(two.commands.map((c) => c.ref), ['refs/heads/main', 'refs/heads/topic']);
  const del = parseReceivePackRequest(bodies.get('delete')!);
  assert.equal(del.hasPack, false);
  assert.equal(del.packOffset, bodies.get('delete')!.length);
  assert.equal(del.commands[0].newOid, '0'.repeat(40));
  assert.equal(parseReceivePackRequest(bodies.get('create-branch')!).packObjectCount, 4);
  assert.equal(parseReceivePackRequest(bodies.get('tag')!).packObjectCount, 1);
});

test('fresh captures have the same commands as the golden ones', async () => {
  const { manifest } = await golden();
  const fresh = await generateFixtures();
  for (const n of FIXTURE_NAMES) {
    const r = parseReceivePackRequest(fresh[n]);
    assert.deepEqual(r.commands, manifest[n].commands, n);
    assert.equal(r.hasPack, manifest[n].hasPack, n);
  }
});

test('golden packs analyse against rebuilt upstream snapshots (same object ids)', async () => {
  const { bodies } = await golden();
  const fresh = await generateFixtures({ snapshots: true });
  const summary: string[] = [];
  try {
    for (const n of FIXTURE_NAMES) {
      const body = bodies.get(n)!;
      const req = parseReceivePackRequest(body);
      let packFile: string | null = null;
      if (req.hasPack) {
        packFile = join(dirname(fresh[n].cache), 'golden.pack');
        await writeFile(packFile, body.subarray(req.packOffset));
      }
      const a = await analysePush({ cacheDir: fresh[n].cache, packFile, commands: req.commands });
      await cleanupQuarantine(a.quarantineDir);
      summary.push(`${n}: index-pack ${a.timings.indexPackMs} ms + analysis ${a.timings.analysisMs} ms`);
      const changes = a.refs.map((r) => `${r.ref} ${r.change} ${r.commits.length}c ${r.files.map((f) => `${f.status}:${f.path}`).join(',')}`);
      const want: Record<string, string[]> = {
        'create-branch': ['refs/heads/feature create 1c added:src/feature.js'],
        'update-ff': ['refs/heads/feature fast-forward 1c modified:src/feature.js'],
        tag: ['refs/tags/v1.0 create 1c added:src/feature.js'], // the annotated tag object, shown like a commit
        'two-refs': ['refs/heads/main fast-forward 1c modified:README.md', 'refs/heads/topic create 2c modified:README.md,added:topic.txt'],
        delete: ['refs/heads/feature delete 0c '],
      };
      assert.deepEqual(changes, want[n], n);
    }
  } finally {
    for (const n of FIXTURE_NAMES) await rm(dirname(fresh[n].cache), { recursive: true, force: true });
  }
  console.log(summary.map((l) => `# timing golden ${l}`).join('\n'));
});

test('corrupt bodies are GitProtocolErrors', async () => {
  const { bodies } = await golden();
  const body = bodies.get('create-branch')!;
  const { packOffset } = parseReceivePackRequest(body);
  assertProtocolError(() => parseReceivePackRequest(body.subarray(0, body.length - 10)), /Truncated or corrupt pack/);
  assertProtocolError(() => parseReceivePackRequest(body.subarray(0, packOffset + 30)), /Truncated or corrupt pack/);
  const flipped = Buffer.from(body);
  flipped[packOffset + 40] ^= 0x20;
  assertProtocolError(() => parseReceivePackRequest(flipped), /Truncated or corrupt pack/);
  const badLen = Buffer.from(body);
  badLen.write('zz', 0, 'latin1');
  assertProtocolError(() => parseReceivePackRequest(badLen), /Bad pkt-line length/);
  const tooShort = Buffer.from(body);
  tooShort.write('0003', 0, 'latin1');
  assertProtocolError(() => parseReceivePackRequest(tooShort), /reserved/);
  assertProtocolError(() => parseReceivePackRequest(body.subarray(0, 100)), /Truncated pkt-line/);
  const badVersion = Buffer.from(body);
  badVersion.writeUInt32BE(9, packOffset + 4);
  assertProtocolError(() => parseReceivePackRequest(badVersion), /unsupported version 9/);
});

test('large push: git probes with 0000, then sends the chunked body', async () => {
  const s = await Scenario.create();
  try {
    await s.commit('Large blob', { 'blob.bin': randomBytes(2 * 1024 * 1024) });
    const r = await s.push(['origin', 'main']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.posts.length, 2);
    assert.equal(r.posts[0].body.toString('latin1'), '0000');
    const probe = parseReceivePackRequest(r.posts[0].body);
    assert.equal(probe.isProbe, true);
    assert.deepEqual(probe.commands, []);
    assert.equal(r.posts[1].chunked, true);
    const real = parseReceivePackRequest(r.posts[1].body);
    assert.equal(real.isProbe, false);
    assert.equal(real.commands[0].ref, 'refs/heads/main');
    assert.equal(real.packObjectCount, 3);
    assert.ok(r.posts[1].body.length > 2 * 1024 * 1024);
  } finally {
    await s.close();
  }
});
