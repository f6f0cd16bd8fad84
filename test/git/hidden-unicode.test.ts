// Findings for text that reads differently from what it is (Trojan Source and friends) in a push's review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hiddenUnicodeFindings, opaqueFileFindings } from '../../main/git/hidden-unicode';
import { modeNote } from '../../main/contract/views';
import type { RefUpdateView } from '../../main/contract/views';

function ref(files: Array<{ path: string; patch: string }>, message = 'a commit'): RefUpdateView {
  return {
    ref: 'refs/heads/main', oldOid: '1'.repeat(40), newOid: '2'.repeat(40), change: 'update', base: 'main', omitted: null,
    commits: [{ oid: '3'.repeat(40), author: 'a', authorDate: '', committer: 'c', message }],
    files: files.map((f) => ({ ...f, oldPath: null, status: 'modified', binary: false, oldSize: 1, newSize: 1, oldMode: null, newMode: null, additions: 1, deletions: 0, omitted: null })),
  };
}

test('bidirectional controls in added lines are a critical finding with the file and first line; removed and context lines are not', () => {
  // The classic: an early return that reads as part of a comment.
  const patch = '@@ -10,3 +10,4 @@ fn main() {\n context\n-/* \u202eremoved */\n+/*\u202e } \u2066if (isAdmin)\u2069 \u2066 begin admins only */\n+ok\n context \u202e';
  const f = hiddenUnicodeFindings([ref([{ path: 'src/auth.c', patch }])]);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.severity, 'critical');
  assert.equal(f[0]!.rule, 'bidirectional-unicode');
  assert.equal(f[0]!.path, 'src/auth.c');
  assert.equal(f[0]!.line, 11);
  assert.equal(f[0]!.message, 'Added lines: one place with bidirectional control characters (U+202E); the text may run or compile differently from how it reads (Trojan Source). They are shown marked in the diff.');
});

test('invisible and control characters are warnings; CRLF, tabs, form feeds and a leading BOM are not', () => {
  const clean = '@@ -0,0 +1,3 @@\n+\ufeffname = 1\r\n+\tindented\r\n+\fpage break';
  assert.deepEqual(hiddenUnicodeFindings([ref([{ path: 'a.py', patch: clean }])]), []);
  const sneaky = '@@ -0,0 +1,2 @@\n+admin\u200b = True\n+print("\u001b[2Khidden")';
  const f = hiddenUnicodeFindings([ref([{ path: 'b.py', patch: sneaky }])]);
  assert.deepEqual(f.map((x) => [x.severity, x.rule, x.line]), [['warning', 'invisible-unicode', 1], ['warning', 'control-characters', 2]]);
});

test('file paths, commit messages and ref names are checked too; most serious first', () => {
  const f = hiddenUnicodeFindings([ref([{ path: 'docs/readme\u202e.md', patch: '' }], 'fix\u001b]0;title\u0007')]);
  assert.deepEqual(f.map((x) => [x.severity, x.rule, x.path]), [['critical', 'bidirectional-unicode', 'docs/readme\u202e.md'], ['warning', 'control-characters', null]]);
  assert.match(f[1]!.message, /^The message of commit 3333333333: one place with control characters \(U\+001B\)/);
});

test('a script or code file that git shows as binary (one NUL byte) is a warning; real binaries and deletions are not', () => {
  const r = ref([]);
  const file = (path: string, over: object = {}) => ({ path, oldPath: null, status: 'added' as const, binary: true, oldSize: null, newSize: 73, oldMode: null, newMode: '100644', additions: 0, deletions: 0, patch: '', omitted: null, ...over });
  r.files = [file('build.sh'), file('index.js'), file('bin/tool', { newMode: '100755' }), file('logo.png'), file('old.py', { status: 'deleted' })];
  const f = opaqueFileFindings([r]);
  assert.deepEqual(f.map((x) => [x.severity, x.rule, x.path]), [['warning', 'binary-text-file', 'build.sh'], ['warning', 'binary-text-file', 'index.js'], ['warning', 'binary-text-file', 'bin/tool']]);
  assert.match(f[2]!.message, /^An executable file is shown as binary/);
});

test('modeNote: symlinks, submodules and executables say so, ordinary files say nothing', () => {
  assert.equal(modeNote({ status: 'added', oldMode: null, newMode: '120000' }), 'new symlink (120000)');
  assert.equal(modeNote({ status: 'added', oldMode: null, newMode: '100755' }), 'new executable (100755)');
  assert.equal(modeNote({ status: 'modified', oldMode: '100644', newMode: '100755' }), '100644 → 100755 (executable)');
  assert.equal(modeNote({ status: 'modified', oldMode: '120000', newMode: '120000' }), 'symlink (120000)');
  assert.equal(modeNote({ status: 'added', oldMode: null, newMode: '160000' }), 'new submodule (160000)');
  assert.equal(modeNote({ status: 'modified', oldMode: '100644', newMode: '100644' }), null);
  assert.equal(modeNote({ status: 'added', oldMode: null, newMode: '100644' }), null);
});
