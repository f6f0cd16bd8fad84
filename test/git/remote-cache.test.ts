import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { RemoteCache, git } from '../../main/git/index';
import { Scenario, tempDir } from './scenario';

let s: Scenario;
let root: string;
before(async () => { s = await Scenario.create(); root = await tempDir('caches'); });
after(async () => { await s?.close(); await rm(root, { recursive: true, force: true }); });

const refsOf = async (gitDir: string): Promise<string> =>
  (await git(['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname) %(refname)'])).stdout.toString();
async function objectCount(gitDir: string): Promise<number> {
  const out = (await git(['--git-dir', gitDir, 'count-objects', '-v'])).stdout.toString();
  return Number(/^count: (\d+)$/m.exec(out)![1]) + Number(/^in-pack: (\d+)$/m.exec(out)![1]);
}
const fetchPosts = () => s.server.posts.filter((p) => p.path.endsWith('/git-upload-pack') && p.body.includes('command=fetch'));

test('dirFor hashes the remote URL', () => {
  const c = new RemoteCache(root);
  const url = 'https://example.test/o/r.git';
  assert.equal(c.dirFor(url), join(root, `${createHash('sha256').update(url).digest('hex').slice(0, 16)}.git`));
  assert.notEqual(c.dirFor(url), c.dirFor(`${url}/`));
});

test('ensure creates and fetches; a second ensure is incremental; proxy settings are ignored', async () => {
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
  process.env.HTTP_PROXY = 'http://127.0.0.1:9'; // nothing listens there: a proxied fetch would fail
  process.env.http_proxy = 'http://127.0.0.1:9';
  try {
    const cache = new RemoteCache(root);
    await s.g(['tag', 'v0']);
    await s.push(['origin', 'v0']);
    const dir = await cache.ensure(s.remoteUrl, { extraHeader: 'Authorization: Basic dXNlcjpwYXNz' });
    assert.equal(dir, cache.dirFor(s.remoteUrl));
    assert.equal(await refsOf(dir), await refsOf(s.bare));
    assert.equal((await git(['--git-dir', dir, 'symbolic-ref', 'HEAD'])).stdout.toString().trim(), 'refs/heads/main');
    const gets = s.server.requests.filter((r) => r.method === 'GET' && r.url.includes('upload-pack'));
    assert.ok(gets.length > 0 && gets.every((r) => r.headers.authorization === 'Basic dXNlcjpwYXNz'));
    const objectsBefore = await objectCount(dir);
    const oldTip = await s.g(['rev-parse', 'main']);
    assert.equal(await cache.hasObjects(dir, [oldTip]), true);

    const newTip = await s.commit('Upstream moves', { 'new.txt': 'new\n' });
    await s.push(['origin', 'main']);
    assert.equal(await cache.hasObjects(dir, [oldTip, newTip]), false);
    const before = fetchPosts().length;
    await cache.ensure(s.remoteUrl);
    assert.equal(await cache.hasObjects(dir, [oldTip, newTip]), true);
    const fetches = fetchPosts().slice(before);
    assert.equal(fetches.length, 1);
    assert.ok(fetches[0].body.includes(`have ${oldTip}`), 'second fetch negotiates with what the cache has');
    assert.equal(await objectCount(dir), objectsBefore + 3, 'only the new commit, tree and blob were fetched');
    // nothing new upstream: no fetch command at all
    const b2 = fetchPosts().length;
    await cache.ensure(s.remoteUrl);
    assert.equal(fetchPosts().length, b2);
    // pruning: a deleted upstream branch disappears from the cache
    await s.g(['push', 'origin', 'main:refs/heads/tmp']);
    await cache.ensure(s.remoteUrl);
    assert.match(await refsOf(dir), /refs\/heads\/tmp/);
    await s.g(['push', 'origin', '--delete', 'tmp']);
    await cache.ensure(s.remoteUrl);
    assert.doesNotMatch(await refsOf(dir), /refs\/heads\/tmp/);
  } finally {
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  }
});

test('the cache of (private) upstream repositories is the owner\'s only, also under a data dir others can read', async () => {
  const loose = join(root, 'loose-data-dir');
  await mkdir(join(loose, 'git-cache'), { recursive: true, mode: 0o755 });
  await chmod(join(loose, 'git-cache'), 0o755);
  const cache = new RemoteCache(join(loose, 'git-cache'));
  await cache.ensure(s.remoteUrl, {});
  assert.equal((await stat(join(loose, 'git-cache'))).mode & 0o777, 0o700);
});

test('concurrent ensure calls share at most one follow-up fetch', async () => {
  const cache = new RemoteCache(root);
  const count = () => s.server.requests.filter((r) => r.method === 'GET' && r.url.includes('service=git-upload-pack')).length;
  const before = count();
  const dirs = await Promise.all([1, 2, 3, 4].map(() => cache.ensure(s.remoteUrl)));
  assert.equal(new Set(dirs).size, 1);
  // one running fetch + one queued follow-up; each does a fetch and an ls-remote (2 GETs)
  assert.equal(count() - before, 4);
  await assert.rejects(cache.ensure(`${s.server.url}/missing.git`), /git fetch \(remote cache\) failed/);
  assert.equal(await cache.ensure(s.remoteUrl), dirs[0]);
});
