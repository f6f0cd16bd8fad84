// analysePush on real pushes: file kinds, binary sizes, limits, thin packs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { symlink, unlink, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { git, parseReceivePackRequest, PatchSplitter, PushNotShowableError } from '../../main/git/index';
import { Scenario, tempDir } from './scenario';
import { pushAndAnalyse, timings } from './analyse-helper';

let s: Scenario;
before(async () => { s = await Scenario.create(); });
after(async () => {
  await s?.close();
  for (const t of timings) console.log(`# timing ${t.name}: ${t.ms.toFixed(0)} ms = index-pack ${t.indexPackMs} + analysis ${t.analysisMs} (pack ${t.packBytes} bytes)`);
});

/** A valid 1x1 PNG. */
function png(): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
    let crc = 0xffffffff;
    for (const b of Buffer.concat([Buffer.from(type), data])) crc = crcTable[(crc ^ b) & 0xff] ^ (crc >>> 8);
    const crcBuf = Buffer.alloc(4); crcBuf.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
    return Buffer.concat([len, Buffer.from(type), data, crcBuf]);
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from([0, 255, 0, 0]))), chunk('IEND', Buffer.alloc(0))]);
}

test('binary file: sizes, no patch; modified binary keeps both sizes', async () => {
  const img = png();
  await s.commit('Add logo', { 'logo.png': img });
  const { refs } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'binary-add' });
  const f = refs[0].files[0];
  assert.deepEqual([f.path, f.status, f.binary, f.oldSize, f.newSize, f.additions, f.deletions, f.patch, f.omitted],
    ['logo.png', 'added', true, null, img.length, 0, 0, '', null]);
  const img2 = Buffer.concat([img, Buffer.from([0, 1, 2, 3, 0, 0])]);
  await s.commit('Change logo', { 'logo.png': img2 });
  const { refs: r2 } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'binary-modify' });
  assert.deepEqual([r2[0].files[0].status, r2[0].files[0].binary, r2[0].files[0].oldSize, r2[0].files[0].newSize],
    ['modified', true, img.length, img2.length]);
});

test('rename, mode change, type change, delete in one push', async () => {
  await s.commit('Prep', { 'tool.sh': 'echo hi\n', 'target.txt': 'x\n', 'gone.txt': 'bye\n' });
  await pushAndAnalyse(s, ['origin', 'main'], { name: 'prep' });
  await s.g(['mv', 'src/app.js', 'src/main.js']);
  await unlink(join(s.work, 'target.txt'));
  await symlink('tool.sh', join(s.work, 'target.txt'));
  await s.commit('Shuffle', { 'gone.txt': null }, { mode: { 'tool.sh': 0o755 } });
  const { refs } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'rename-mode-type' });
  const byPath = Object.fromEntries(refs[0].files.map((f) => [f.path, f]));
  assert.deepEqual(Object.keys(byPath).sort(), ['gone.txt', 'src/main.js', 'target.txt', 'tool.sh']);
  assert.deepEqual([byPath['src/main.js'].status, byPath['src/main.js'].oldPath, byPath['src/main.js'].patch], ['renamed', 'src/app.js', '']);
  assert.deepEqual([byPath['tool.sh'].status, byPath['tool.sh'].oldMode, byPath['tool.sh'].newMode], ['mode-change', '100644', '100755']);
  const t = byPath['target.txt'];
  assert.deepEqual([t.status, t.oldMode, t.newMode, t.additions, t.deletions], ['type-change', '100644', '120000', 1, 1]);
  assert.equal(t.patch, '@@ -1 +0,0 @@\n-x\n@@ -0,0 +1 @@\n+tool.sh\n\\ No newline at end of file\n');
  assert.deepEqual([byPath['gone.txt'].status, byPath['gone.txt'].patch, byPath['gone.txt'].oldSize, byPath['gone.txt'].newSize],
    ['deleted', '@@ -1 +0,0 @@\n-bye\n', 4, null]);
});

test('file and patch limits are reported, never silently cut', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 7; i++) files[`many/f${i}.txt`] = `${i}\n`;
  files['big.txt'] = Array.from({ length: 2000 }, (_, i) => `line ${i} ${'x'.repeat(80)}`).join('\n') + '\n';
  await s.commit('Many files', files);
  const { refs } = await pushAndAnalyse(s, ['origin', 'main'], { limits: { maxFilesPerRef: 4, maxPatchBytesPerFile: 1024 }, name: 'limits' });
  const r = refs[0];
  // Every file is listed; past the limit without its diff, and each says so.
  assert.deepEqual(r.files.map((f) => f.path), ['big.txt', ...Array.from({ length: 7 }, (_, i) => `many/f${i}.txt`)]);
  assert.equal(r.omitted, '4 more files listed without their diffs (the first 4 files have diffs)');
  assert.deepEqual(r.files.slice(4).map((f) => [f.status, f.additions, f.patch, f.omitted]),
    Array.from({ length: 4 }, () => ['added', 1, '', 'diff not shown: this ref changes 8 files, and the first 4 have diffs']));
  const big = r.files[0];
  assert.equal(big.additions, 2000);
  assert.ok(Buffer.byteLength(big.patch) <= 1024);
  assert.ok(big.patch.startsWith('@@ -0,0 +1,2000 @@\n+line 0 '));
  assert.ok(big.patch.endsWith('\n'));
  const keptLines = big.patch.split('\n').length - 1; // hunk header + kept lines
  const omittedLines = files['big.txt'].split('\n').slice(keptLines - 1, 2000);
  const omittedBytes = omittedLines.reduce((n, l) => n + l.length + 2, 0);
  // Every line past the cut is an added one here: the count (numstat's, less the lines kept) is theirs.
  assert.equal(big.omitted, `${omittedLines.length.toLocaleString('en-US').replace(/,/g, ' ')} added or deleted lines (${Math.round(omittedBytes / 1024)} KiB of patch) not shown`);
  assert.match(big.omitted!, /^1 9\d\d added or deleted lines \(1\d\d KiB of patch\) not shown$/);
  assert.equal(r.files[1].patch, '@@ -0,0 +1 @@\n+0\n');
});

test('a file list past maxFileListBytes is not parsed but refused as not showable', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 40; i++) files[`wide/file-with-a-long-name-${i}.txt`] = `${i}\n`;
  await s.commit('Wide', files);
  await assert.rejects(pushAndAnalyse(s, ['origin', 'main'], { limits: { maxFileListBytes: 1024 }, name: 'wide' }), (e: unknown) => {
    assert.ok(e instanceof PushNotShowableError, String(e));
    assert.match((e as Error).message, /^this push changes more files than Airlock can list \(the list passes 1 KiB\)$/);
    return true;
  });
});

test('thin pack: base objects come from the cache via --fix-thin', async () => {
  const lines = Array.from({ length: 3000 }, (_, i) => `const value${i} = ${i * 7}; // padding text for delta`);
  await s.commit('Big text', { 'data.js': lines.join('\n') + '\n' });
  await pushAndAnalyse(s, ['origin', 'main'], { name: 'prep-big' });
  lines[1500] = 'const changed = true;';
  await s.commit('One line', { 'data.js': lines.join('\n') + '\n' });
  const cache = await s.snapshot();
  const r = await s.push(['origin', 'main']);
  assert.equal(r.code, 0, r.stderr);
  const body = r.posts[r.posts.length - 1].body;
  const req = parseReceivePackRequest(body);
  const pack = body.subarray(req.packOffset);
  assert.ok(pack.length < 2000, `pack of ${pack.length} bytes is not delta-compressed`);
  // Without the cache the pack cannot be resolved: it is thin.
  const bare = join(await tempDir('thin'), 'empty.git');
  await git(['init', '-q', '--bare', bare], { env: s.env });
  await assert.rejects(git(['--git-dir', bare, 'index-pack', '--stdin', '--fix-thin'], { input: pack, env: s.env }), /unresolved delta|missing|bad object/i);
  await rm(join(bare, '..'), { recursive: true, force: true });
  await rm(join(cache, '..'), { recursive: true, force: true });
  // With the cache it resolves (pushAndAnalyse takes its own snapshot before pushing).
  lines[1600] = 'const changedAgain = true;';
  await s.commit('Another line', { 'data.js': lines.join('\n') + '\n' });
  const { refs } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'thin' });
  assert.equal(refs[0].files[0].patch.split('\n').filter((l) => l.startsWith('+') || l.startsWith('-')).join('|'),
    '-const value1600 = 11200; // padding text for delta|+const changedAgain = true;');
});

test('PatchSplitter keeps memory bounded on an enormous single line', () => {
  const sp = new PatchSplitter([1, 1], 100);
  sp.push(Buffer.from('diff --git a/x b/x\nindex 1..2\n--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+'));
  for (let i = 0; i < 40; i++) sp.push(Buffer.alloc(64 * 1024, 0x61));
  sp.push(Buffer.from('\ndiff --git a/y b/y\nBinary files a/y and b/y differ\n'));
  sp.end();
  assert.equal(sp.result(0).patch, '@@ -0,0 +1 @@\n');
  assert.equal(sp.result(0).omitted, 'the rest of the patch (2.5 MiB) not shown');
  assert.equal(sp.result(0, [1, 0]).omitted, '1 added or deleted line (2.5 MiB of patch) not shown');
  assert.equal(sp.result(1).binary, true);
  assert.equal(sp.push(Buffer.from('diff --git a/z b/z\n')), false); // more entries than expected: stop
});
