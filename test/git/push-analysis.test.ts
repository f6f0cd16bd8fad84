// analysePush on real pushes: ref change kinds, commits, diff bases.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import { git, parseReceivePackRequest, analysePush, cleanupQuarantine, GitMissingObjectsError } from '../../main/git/index';
import { Scenario } from './scenario';
import { pushAndAnalyse, timings } from './analyse-helper';

let s: Scenario;
let mainTip: string;
before(async () => { s = await Scenario.create(); mainTip = await s.g(['rev-parse', 'main']); });
after(async () => {
  await s?.close();
  for (const t of timings) console.log(`# timing ${t.name}: ${t.ms.toFixed(0)} ms = index-pack ${t.indexPackMs} + analysis ${t.analysisMs} (pack ${t.packBytes} bytes)`);
});

test('create a branch: base is the merge-base with main, commits listed', async () => {
  await s.g(['checkout', '-q', '-b', 'feature']);
  const c1 = await s.commit('Add feature module\n\nLonger body line.', { 'src/feature.js': 'export const f = 1;\n' });
  const c2 = await s.commit('Tweak app', { 'src/app.js': "console.log('hello');\n" });
  const { refs, req } = await pushAndAnalyse(s, ['origin', 'feature'], { name: 'create-branch' });
  assert.equal(req.packObjectCount! > 0, true);
  assert.equal(refs.length, 1);
  const r = refs[0];
  assert.equal(r.ref, 'refs/heads/feature');
  assert.equal(r.change, 'create');
  assert.match(r.base, new RegExp(`^merge-base with main \\(${mainTip.slice(0, 12)}\\)$`));
  assert.deepEqual(r.commits.map((c) => c.oid), [c2, c1]);
  assert.equal(r.commits[1].message, 'Add feature module\n\nLonger body line.');
  assert.equal(r.commits[1].author, 'Agent Smith <agent@example.test>');
  assert.equal(r.commits[1].committer, 'Agent Smith <agent@example.test>');
  assert.match(r.commits[1].authorDate, /^2023-11-1\dT\d\d:\d\d:\d\d\+01:00$/);
  const date = await s.g(['log', '-1', '--format=%aI', c1]);
  assert.equal(r.commits[1].authorDate, date);
  assert.deepEqual(r.files.map((f) => [f.path, f.status, f.additions, f.deletions]), [
    ['src/app.js', 'modified', 1, 40],
    ['src/feature.js', 'added', 1, 0],
  ]);
  const added = r.files[1];
  assert.equal(added.oldMode, null);
  assert.equal(added.newMode, '100644');
  assert.equal(added.newSize, 20);
  assert.equal(added.oldSize, null);
  assert.equal(added.patch, '@@ -0,0 +1 @@\n+export const f = 1;\n');
  assert.equal(r.omitted, null);
});

test('fast-forward update: base is the previous tip, commits old..new', async () => {
  const old = await s.g(['rev-parse', 'HEAD']);
  const c3 = await s.commit('More', { 'src/feature.js': 'export const f = 2;\n' });
  const { refs } = await pushAndAnalyse(s, ['origin', 'feature'], { name: 'update-ff' });
  const r = refs[0];
  assert.equal(r.change, 'fast-forward');
  assert.equal(r.oldOid, old);
  assert.equal(r.base, `previous tip of feature (${old.slice(0, 12)})`);
  assert.deepEqual(r.commits.map((c) => c.oid), [c3]);
  assert.deepEqual(r.files.map((f) => f.path), ['src/feature.js']);
  assert.equal(r.files[0].patch, '@@ -1 +1 @@\n-export const f = 1;\n+export const f = 2;\n');
});

test('forced update', async () => {
  const old = await s.g(['rev-parse', 'HEAD']);
  await s.g(['reset', '-q', '--hard', 'HEAD~1']);
  const c = await s.commit('Rewrite', { 'src/feature.js': 'export const f = 3;\n' });
  const { refs } = await pushAndAnalyse(s, ['--force', 'origin', 'feature'], { name: 'forced' });
  const r = refs[0];
  assert.equal(r.change, 'forced');
  assert.equal(r.oldOid, old);
  assert.deepEqual(r.commits.map((x) => x.oid), [c]);
  assert.equal(r.files[0].patch, '@@ -1 +1 @@\n-export const f = 2;\n+export const f = 3;\n');
});

test('annotated tag and lightweight tag, two refs in one push', async () => {
  await s.g(['tag', '-a', '-m', 'Release 1', 'v1']);
  await s.g(['tag', 'light', 'main']);
  const { refs, req } = await pushAndAnalyse(s, ['origin', 'v1', 'light'], { name: 'two-tags' });
  assert.equal(req.commands.length, 2);
  const v1 = refs.find((r) => r.ref === 'refs/tags/v1')!;
  const light = refs.find((r) => r.ref === 'refs/tags/light')!;
  assert.equal(v1.change, 'create');
  assert.equal(v1.newOid, await s.g(['rev-parse', 'v1']));
  // Everything is already upstream on feature; the tag object itself (tagger, message) is shown.
  assert.deepEqual(v1.commits.map((c) => [c.oid, c.committer, c.message]),
    [[v1.newOid, `annotated tag v1 on commit ${(await s.g(['rev-parse', 'v1^{commit}'])).slice(0, 12)}`, '[annotated tag v1] Release 1\n']]);
  assert.match(v1.commits[0]!.author, /^Agent Smith <agent@example\.test>$/);
  assert.match(v1.base, /^merge-base with main/);
  assert.equal(light.change, 'create');
  assert.deepEqual(light.files, []);
  // moving a tag is an 'update'
  await s.g(['tag', '-f', '-a', '-m', 'Release 1 again', 'v1', 'main']);
  const moved = await pushAndAnalyse(s, ['--force', 'origin', 'v1'], { name: 'tag-update' });
  assert.equal(moved.refs[0].change, 'update');
  assert.ok(moved.refs[0].files.length > 0);
});

test('two branches in one push, then delete one (no pack)', async () => {
  await s.g(['checkout', '-q', 'main']);
  const m = await s.commit('Main change', { 'README.md': '# r\n\nChanged.\n' });
  await s.g(['checkout', '-q', '-b', 'other']);
  await s.commit('Other', { 'other.txt': 'o\n' });
  const { refs } = await pushAndAnalyse(s, ['origin', 'main', 'other'], { name: 'two-refs' });
  assert.deepEqual(refs.map((r) => [r.ref, r.change]), [['refs/heads/main', 'fast-forward'], ['refs/heads/other', 'create']]);
  assert.equal(refs[0].commits[0].oid, m);
  // other is created off the *old* main: merge-base is the old main tip
  assert.match(refs[1].base, new RegExp(`^merge-base with main \\(${mainTip.slice(0, 12)}\\)`));
  assert.deepEqual(refs[1].commits.map((c) => c.message), ['Other', 'Main change']);

  const del = await pushAndAnalyse(s, ['origin', '--delete', 'other'], { name: 'delete' });
  assert.equal(del.req.hasPack, false);
  assert.deepEqual(del.refs[0], {
    ref: 'refs/heads/other', oldOid: del.req.commands[0].oldOid, newOid: '0'.repeat(40), change: 'delete',
    commits: [], base: 'none (ref deleted)', files: [], omitted: null,
  });
});

test('new branch at a commit upstream already has: empty pack, no commits, no files', async () => {
  const { refs, req } = await pushAndAnalyse(s, ['origin', 'main:refs/heads/copy-of-main'], { name: 'empty-pack' });
  assert.equal(req.hasPack, true);
  assert.equal(req.packObjectCount, 0);
  assert.deepEqual([refs[0].change, refs[0].commits, refs[0].files, refs[0].omitted], ['create', [], [], null]);
  assert.match(refs[0].base, /^merge-base with main/);
});

test('a cache behind upstream gives GitMissingObjectsError (thin base or tree objects missing)', async () => {
  const cache = await s.snapshot();
  try {
    await s.g(['checkout', '-q', 'feature']);
    await s.commit('Feature again', { 'src/feature.js': 'export const f = 4;\n' });
    // Make the cache forget upstream's feature branch and its objects.
    await git(['--git-dir', cache, 'update-ref', '-d', 'refs/heads/feature'], { env: s.env });
    await git(['--git-dir', cache, 'reflog', 'expire', '--expire=now', '--all'], { env: s.env });
    await git(['--git-dir', cache, 'gc', '-q', '--prune=now'], { env: s.env });
    for (const thin of [true, false]) {
      if (!thin) await s.commit('And again', { 'src/feature.js': 'export const f = 5;\n' });
      const r = await s.push([thin ? '--thin' : '--no-thin', 'origin', 'feature']);
      assert.equal(r.code, 0, r.stderr);
      const body = r.posts[r.posts.length - 1].body;
      const req = parseReceivePackRequest(body);
      const packFile = join(dirname(cache), 'p.pack');
      await writeFile(packFile, body.subarray(req.packOffset));
      await assert.rejects(analysePush({ cacheDir: cache, packFile, commands: req.commands }), (e: unknown) => {
        assert.ok(e instanceof GitMissingObjectsError, String(e));
        assert.match((e as Error).message, /^The push needs objects the upstream cache does not have \(.+\); refresh the cache and analyse again\.$/);
        return true;
      });
    }
  } finally {
    await rm(dirname(cache), { recursive: true, force: true });
  }
});

test('defaultBranch option picks the branch for the merge-base', async () => {
  await s.g(['checkout', '-q', '-b', 'from-feature']);
  await s.commit('Child of feature', { 'child.txt': 'c\n' });
  const featureTip = await s.g(['rev-parse', 'origin/feature']);
  const cache = await s.snapshot();
  try {
    const r = await s.push(['origin', 'from-feature']);
    const body = r.posts[r.posts.length - 1].body;
    const req = parseReceivePackRequest(body);
    const packFile = join(dirname(cache), 'p.pack');
    await writeFile(packFile, body.subarray(req.packOffset));
    const a = await analysePush({ cacheDir: cache, packFile, commands: req.commands, defaultBranch: 'feature' });
    await cleanupQuarantine(a.quarantineDir);
    assert.equal(a.refs[0].base, `merge-base with feature (${featureTip.slice(0, 12)})`);
    assert.deepEqual(a.refs[0].files.map((f) => f.path), ['child.txt']);
  } finally {
    await rm(dirname(cache), { recursive: true, force: true });
  }
});

test('quarantineParent: the indexed objects live under it (the gateway names its spool) and go with cleanupQuarantine; a failed analysis leaves none', async () => {
  await s.g(['checkout', '-q', '-b', 'quarantined']);
  await s.commit('Quarantined change', { 'q.txt': 'q\n' });
  const cache = await s.snapshot();
  try {
    const r = await s.push(['origin', 'quarantined']);
    const body = r.posts[r.posts.length - 1].body;
    const req = parseReceivePackRequest(body);
    const spool = join(dirname(cache), 'spool');
    const packFile = join(dirname(cache), 'p.pack');
    await writeFile(packFile, body.subarray(req.packOffset));
    const a = await analysePush({ cacheDir: cache, packFile, commands: req.commands, quarantineParent: spool });
    assert.equal(dirname(a.quarantineDir), spool);
    assert.match(basename(a.quarantineDir), /^airlock-quarantine-/);
    assert.equal((statSync(spool).mode & 0o777).toString(8), '700');
    assert.ok(readdirSync(join(a.quarantineDir, 'objects', 'pack')).some((f) => f.endsWith('.pack')), 'the pack is indexed there');
    assert.ok(a.refs[0]!.files.some((f) => f.path === 'q.txt'));
    await cleanupQuarantine(a.quarantineDir);
    assert.deepEqual(readdirSync(spool), []);
    await writeFile(packFile, Buffer.from('PACK not a pack'));
    await assert.rejects(analysePush({ cacheDir: cache, packFile, commands: req.commands, quarantineParent: spool }));
    assert.deepEqual(readdirSync(spool), [], 'a failed analysis removes its quarantine');
  } finally {
    await rm(dirname(cache), { recursive: true, force: true });
  }
});

test('orphan branch: empty-tree base; commit limit', async () => {
  await s.g(['checkout', '-q', '--orphan', 'orphan']);
  await s.g(['rm', '-q', '-rf', '.']);
  for (let i = 0; i < 5; i++) await s.commit(`orphan ${i}`, { [`o${i}.txt`]: `${i}\n` });
  const { refs } = await pushAndAnalyse(s, ['origin', 'orphan'], { limits: { maxCommitsPerRef: 3 }, name: 'orphan' });
  assert.equal(refs[0].base, 'empty tree (no common history with main)');
  assert.equal(refs[0].commits.length, 3);
  assert.equal(refs[0].omitted, '2 more commits not shown');
  assert.equal(refs[0].files.length, 5);
});

test('a push of many refs: maxRefs are analysed in full, branches before tags; the rest are listed, in push order, and say so', async () => {
  await s.g(['checkout', '-q', 'main']);
  // Tags sort before branches in git's push order: they must not take the branches' analysis.
  for (let i = 0; i < 3; i++) await s.g(['tag', `a-many-tag-${i}`, 'main']);
  const names: string[] = ['--tags'];
  for (let i = 0; i < 7; i++) {
    const name = `many-${String(i).padStart(2, '0')}`;
    names.push(name);
    await s.g(['checkout', '-q', '-b', name, 'main']);
    await s.commit(`commit on ${name}`, { [`${name}.txt`]: `${name}\n` });
  }
  await s.g(['checkout', '-q', 'main']);
  const { refs, req } = await pushAndAnalyse(s, ['origin', ...names], { limits: { maxRefs: 3 }, name: 'many-refs' });
  assert.equal(refs.length, req.commands.length, 'every ref update is listed');
  assert.deepEqual(refs.map((r) => r.ref), req.commands.map((c) => c.ref), 'in the order of the push commands');
  const heads = refs.filter((r) => r.ref.startsWith('refs/heads/many-'));
  const tags = refs.filter((r) => r.ref.startsWith('refs/tags/'));
  assert.equal(heads.length, 7);
  assert.ok(tags.length >= 3);
  assert.ok(tags.every((r) => r.base === 'not analysed'), 'tags wait for the branches');
  for (const r of heads.slice(0, 3)) {
    const name = r.ref.replace('refs/heads/', '');
    assert.equal(r.change, 'create');
    assert.deepEqual(r.commits.map((c) => c.message), [`commit on ${name}`], r.ref);
    assert.deepEqual(r.files.map((f) => f.path), [`${name}.txt`], r.ref);
  }
  for (const r of [...heads.slice(3), ...tags]) {
    assert.equal(r.change, 'create');
    assert.equal(r.base, 'not analysed');
    assert.deepEqual([r.commits, r.files], [[], []]);
    assert.equal(r.omitted, `Not analysed: this push updates ${refs.length} refs, and 3 are analysed in full (commits and files), branches before tags.`);
  }
});

test('a tag created on an old commit says how many commits behind the default branch it starts', async () => {
  await s.g(['checkout', '-q', 'main']);
  const old = await s.g(['rev-parse', 'main']);
  await s.commit('Main moves on: remove a debug bypass', { 'later.txt': 'later\n' });
  await s.commit('Main moves on again', { 'later2.txt': 'later\n' });
  const moved = await s.push(['origin', 'main']);
  assert.equal(moved.code, 0, moved.stderr);
  await s.g(['checkout', '-q', old]);
  await s.commit('Bump version', { 'VERSION': '2.4.1\n' });
  await s.g(['tag', 'v2.4.1']);
  const { refs } = await pushAndAnalyse(s, ['origin', 'v2.4.1'], { name: 'old-base-tag' });
  assert.match(refs[0]!.base, new RegExp(`^merge-base with main \\(${old.slice(0, 12)}\\), 2 commits behind main: what main changed since is not in it$`));
  assert.deepEqual(refs[0]!.files.map((f) => f.path), ['VERSION']);
  await s.g(['checkout', '-q', 'main']);
});
