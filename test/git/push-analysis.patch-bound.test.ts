// The work analysePush does on a file's patch is bounded by what it keeps of it, not by the file's
// length: a small pack (one highly compressible file of millions of short lines) must not make the
// gateway's thread look at every line git prints. And the diff read per ref is bounded in all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PatchSplitter } from '../../main/git/index';
import { Scenario } from './scenario';
import { pushAndAnalyse } from './analyse-helper';

let s: Scenario;
before(async () => { s = await Scenario.create(); });
after(async () => { await s?.close(); });

/** `git diff -p`-like output: a cut file, a type change (two patches) cut in its first half, a binary file, a short one. */
function sampleDiff(): Buffer {
  const long = (sign: string, n: number) => Array.from({ length: n }, (_, i) => `${sign}line ${i}\n`).join('');
  return Buffer.from([
    'diff --git a/a.txt b/a.txt\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1,300 @@\n', long('+', 300),
    'diff --git a/b b/b\ndeleted file mode 100644\nindex 2222222..0000000\n--- a/b\n+++ /dev/null\n@@ -1,200 +0,0 @@\n', long('-', 200),
    'diff --git a/b b/b\nnew file mode 120000\nindex 0000000..3333333\n--- /dev/null\n+++ b/b\n@@ -0,0 +1 @@\n+target\n\\ No newline at end of file\n',
    'diff --git a/c.png b/c.png\nnew file mode 100644\nindex 0000000..4444444\nBinary files /dev/null and b/c.png differ\n',
    // A line that looks like a header, but inside a hunk (it starts with a space): not one.
    'diff --git a/d.txt b/d.txt\nindex 5555555..6666666 100644\n--- a/d.txt\n+++ b/d.txt\n@@ -1,3 +1,3 @@\n diff --git a/x b/x\n-old\n+new\n',
  ].join(''), 'latin1');
}

function splitAll(out: Buffer, chunks: number[]): PatchSplitter {
  const sp = new PatchSplitter([1, 2, 1, 1], 200);
  let pos = 0;
  for (const n of chunks) {
    if (pos >= out.length) break;
    sp.push(out.subarray(pos, pos + n));
    pos += n;
  }
  if (pos < out.length) sp.push(out.subarray(pos));
  sp.end();
  return sp;
}

test('PatchSplitter: cut entries are passed over to the next header, whatever the chunk boundaries', () => {
  const out = sampleDiff();
  const counts: Array<[number, number]> = [[300, 0], [1, 200], [0, 0], [1, 1]];
  const whole = splitAll(out, [out.length]);
  const expect = counts.map((c, i) => whole.result(i, c));
  // What is kept, and what the notes say, computed by hand for the one-chunk run.
  const text = out.toString('latin1');
  const aPatch = text.slice(text.indexOf('@@ -0,0 +1,300'), text.indexOf('diff --git a/b'));
  const aKept = aPatch.split(/(?<=\n)/).reduce((k, l) => (k.length + l.length <= 200 ? k + l : k), '');
  assert.ok(aKept.length > 100 && aKept.length <= 200);
  assert.equal(expect[0]!.patch, aKept);
  const aKeptAdds = aKept.split('\n').filter((l) => l.startsWith('+')).length;
  assert.equal(expect[0]!.omitted, `${300 - aKeptAdds} added or deleted lines (${((aPatch.length - aKept.length) / 1024).toFixed(0)} KiB of patch) not shown`);
  assert.deepEqual([expect[0]!.added, expect[0]!.deleted], [aKeptAdds, 0]);
  // The type change: its first half is cut, and its second half (after the cut) is passed over too.
  assert.ok(expect[1]!.patch.startsWith('@@ -1,200 +0,0 @@\n-line 0\n'));
  assert.doesNotMatch(expect[1]!.patch, /target/);
  const bFrom = text.indexOf('@@ -1,200') + expect[1]!.patch.length;
  const bBytes = text.indexOf('diff --git a/c.png') - bFrom;
  assert.match(expect[1]!.omitted!, new RegExp(`^\\d+ added or deleted lines \\(${(bBytes / 1024).toFixed(0)} KiB of patch\\) not shown$`));
  assert.equal(expect[2]!.binary, true);
  assert.equal(expect[2]!.omitted, null);
  assert.equal(expect[3]!.patch, '@@ -1,3 +1,3 @@\n diff --git a/x b/x\n-old\n+new\n');
  assert.equal(expect[3]!.omitted, null);
  assert.ok(whole.linesHandled < 100, `${whole.linesHandled} lines looked at one by one`);

  // Every chunk size from 1 to 40 bytes, and random ones: the same result.
  const splits: number[][] = Array.from({ length: 40 }, (_, n) => Array.from({ length: Math.ceil(out.length / (n + 1)) }, () => n + 1));
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  for (let k = 0; k < 200; k++) splits.push(Array.from({ length: out.length }, () => 1 + Math.floor(rnd() * 30)));
  for (const chunks of splits) {
    const sp = splitAll(out, chunks);
    assert.deepEqual(counts.map((c, i) => sp.result(i, c)), expect, `chunks ${chunks.slice(0, 5).join(',')}…`);
  }
});

test('PatchSplitter.truncate: the entry being read and those not reached say the diff was not read in full', () => {
  const out = sampleDiff();
  const sp = new PatchSplitter([1, 2, 1, 1], 200);
  const at = out.indexOf('-line 10\n');
  sp.push(out.subarray(0, at + 3));
  sp.truncate(at + 3);
  assert.equal(sp.push(out.subarray(at + 3)), false);
  sp.end();
  const r = [sp.result(0, [300, 0]), sp.result(1, [1, 200]), sp.result(2, null), sp.result(3, [1, 1])];
  assert.equal(r[0]!.unread, false);
  assert.match(r[0]!.omitted!, /^\d+ added or deleted lines \(\d+ KiB of patch\) not shown$/);
  assert.equal(r[1]!.unread, true);
  assert.ok(r[1]!.patch.endsWith('-line 9\n'), 'the partial line at the bound is not kept');
  assert.match(r[1]!.omitted!, /^191 added or deleted lines not shown: the diff of this ref passed \d+ KiB in this file, and Airlock read no further$/);
  assert.equal(r[3]!.patch, '');
  assert.match(r[3]!.omitted!, /^diff not shown: the diff of this ref passed \d+ KiB before this file, and Airlock read no further$/);
});

test('a file of millions of short lines: its patch is cut with bounded work, its counts are numstat\'s', async () => {
  const lines = 3_000_000;
  await s.commit('Huge generated file', { 'big.txt': 'a\n'.repeat(lines), 'small.txt': 'one\ntwo\n' });
  const before = PatchSplitter.linesHandled;
  const cpu0 = process.cpuUsage();
  const { refs, body } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'huge-lines' });
  const cpu = process.cpuUsage(cpu0);
  const handled = PatchSplitter.linesHandled - before;
  console.log(`# ${lines} lines in a ${body.length}-byte push: ${handled} lines looked at one by one, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of this process's CPU`);
  // What is kept is 64 KiB per file: about 22 000 lines of "+a\n", and the headers.
  assert.ok(handled < 30_000, `${handled} lines looked at one by one for a 64 KiB patch`);
  const [big, small] = refs[0]!.files;
  assert.deepEqual([big!.path, big!.status, big!.binary, big!.additions, big!.deletions, big!.newSize], ['big.txt', 'added', false, lines, 0, 2 * lines]);
  assert.ok(big!.patch.startsWith(`@@ -0,0 +1,${lines} @@\n+a\n+a\n`));
  assert.ok(Buffer.byteLength(big!.patch) <= 64 * 1024 && Buffer.byteLength(big!.patch) > 64 * 1024 - 3);
  const keptLines = big!.patch.split('\n').length - 2; // less the hunk header and the final empty piece
  const omittedBytes = 3 * (lines - keptLines);
  assert.equal(big!.omitted, `${(lines - keptLines).toLocaleString('en-US').replace(/,/g, ' ')} added or deleted lines (${(omittedBytes / 1024 / 1024).toFixed(1)} MiB of patch) not shown`);
  assert.deepEqual([small!.path, small!.additions, small!.patch, small!.omitted], ['small.txt', 2, '@@ -0,0 +1,2 @@\n+one\n+two\n', null]);
  assert.equal(refs[0]!.omitted, null);
});

test('the diff read per ref is bounded (maxDiffBytesPerRef): git is stopped, the files not read in full say so, with their counts', async () => {
  await s.commit('Past the bound', {
    'bound/a.txt': 'x\n'.repeat(400_000), 'bound/b.txt': 'b1\nb2\nb3\n', 'bound/c.txt': 'c\n',
  });
  const before = PatchSplitter.linesHandled;
  const { refs } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'diff-bound', limits: { maxDiffBytesPerRef: 512 * 1024 } });
  assert.ok(PatchSplitter.linesHandled - before < 30_000);
  const byPath = Object.fromEntries(refs[0]!.files.map((f) => [f.path, f]));
  assert.deepEqual(Object.keys(byPath).sort(), ['bound/a.txt', 'bound/b.txt', 'bound/c.txt']);
  const a = byPath['bound/a.txt']!;
  assert.equal(a.additions, 400_000);
  assert.equal(Buffer.byteLength(a.patch) <= 64 * 1024, true);
  const keptLines = a.patch.split('\n').length - 2;
  assert.equal(a.omitted, `${(400_000 - keptLines).toLocaleString('en-US').replace(/,/g, ' ')} added or deleted lines not shown: the diff of this ref passed 512 KiB in this file, and Airlock read no further`);
  for (const [p, n] of [['bound/b.txt', 3], ['bound/c.txt', 1]] as const) {
    assert.deepEqual([byPath[p]!.additions, byPath[p]!.patch, byPath[p]!.omitted],
      [n, '', 'diff not shown: the diff of this ref passed 512 KiB before this file, and Airlock read no further'], p);
  }
  assert.equal(refs[0]!.omitted, '3 files shown without all of their diffs: the diff of this ref passed 512 KiB, and Airlock read no further');
});

test('a file git calls binary but shown as text (one NUL byte), longer than a patch is kept: cut, every line counted', async () => {
  const text = '#!/bin/sh\n\0\n' + 'echo hi\n'.repeat(20_000);
  await s.commit('Script with a NUL', { 'nul/run.sh': text });
  const { refs } = await pushAndAnalyse(s, ['origin', 'main'], { name: 'textish-long' });
  const f = refs[0]!.files.find((x) => x.path === 'nul/run.sh')!;
  assert.deepEqual([f.binary, f.additions, f.deletions], [true, 20_002, 0]);
  assert.ok(f.patch.startsWith('@@ -0,0 +1,20002 @@\n+#!/bin/sh\n+\0\n+echo hi\n'));
  const keptLines = f.patch.split('\n').length - 2;
  assert.equal(f.omitted, `${(20_002 - keptLines).toLocaleString('en-US').replace(/,/g, ' ')} added or deleted lines (${Math.round((text.length + 20_002 - Buffer.byteLength(f.patch) + 20) / 1024)} KiB of patch) not shown`);
});
