// CredentialStore: set/list/remove, encryption at rest (no plaintext on disk), 0600 files,
// wrong or corrupt key, host normalisation, and reload of a file changed by another process.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { lock } from 'proper-lockfile';
import { join } from 'node:path';
import { AirlockError } from '../../main/contract/errors';
import { CredentialStore, FileKeyProvider, normaliseHostKey } from '../../main/credentials/credential-store';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { airlockErrorCodeAsync } from '../helpers/errors';

const dirs: string[] = [];
after(async () => { for (const d of dirs) await removeDir(d); });

async function fresh(): Promise<{ dir: string; file: string; keyFile: string; store: CredentialStore }> {
  const dir = await makeTempDir('airlock-cred-test-');
  dirs.push(dir);
  const file = join(dir, 'credentials.json');
  const keyFile = join(dir, 'credentials.key');
  return { dir, file, keyFile, store: new CredentialStore(file, new FileKeyProvider(keyFile)) };
}


const SECRET = 'ghp_S3cretTokenValue_0123456789abcdef';

test('set, list, resolve and remove', async () => {
  const { store } = await fresh();
  assert.deepEqual(store.list(), []);
  assert.equal(store.resolve('git.example.com'), null);
  assert.deepEqual(await store.set('git.example.com', SECRET, { username: 'alice' }), { host: 'git.example.com', username: 'alice', scheme: 'basic' });
  assert.deepEqual(await store.set('api.example.com:8443', 'bearer-secret-xyz', { scheme: 'bearer' }),
    { host: 'api.example.com:8443', username: 'x-access-token', scheme: 'bearer' });
  assert.deepEqual(store.list().map((c) => c.host).sort(), ['api.example.com:8443', 'git.example.com']);
  const c = store.resolve('git.example.com')!;
  const basic = Buffer.from(`alice:${SECRET}`).toString('base64');
  assert.equal(c.header, `Basic ${basic}`);
  assert.ok(c.secrets.includes(SECRET) && c.secrets.includes(basic) && c.secrets.includes(c.header));
  assert.equal(store.resolve('api.example.com:8443')!.header, 'Bearer bearer-secret-xyz');
  assert.equal(store.resolve('api.example.com'), null, 'port is part of the key');
  assert.ok(store.allSecrets().includes(SECRET));
  // Setting again replaces.
  await store.set('git.example.com', 'new-secret-value', { username: 'bob' });
  assert.equal(store.list().filter((x) => x.host === 'git.example.com').length, 1);
  assert.equal(store.resolve('git.example.com')!.header, `Basic ${Buffer.from('bob:new-secret-value').toString('base64')}`);
  assert.equal(await store.remove('git.example.com'), true);
  assert.equal(await store.remove('git.example.com'), false);
  assert.equal(store.resolve('git.example.com'), null);
  assert.deepEqual(store.list().map((c) => c.host), ['api.example.com:8443']);
});

test('an empty secret is refused', async () => {
  const { store } = await fresh();
  assert.equal(await airlockErrorCodeAsync(() => store.set('git.example.com', '')), 'bad-request');
});

test('the credentials file holds no plaintext secret; it and the key file are 0600', async () => {
  const { file, keyFile, store } = await fresh();
  await store.set('git.example.com', SECRET, { username: 'alice' });
  const text = readFileSync(file, 'utf8');
  assert.ok(!text.includes(SECRET), 'plaintext secret on disk');
  assert.ok(!text.includes(Buffer.from(SECRET).toString('base64')), 'base64 secret on disk');
  assert.ok(!text.includes(Buffer.from(`alice:${SECRET}`).toString('base64')), 'Basic value on disk');
  assert.ok(!text.includes('S3cret'), 'part of the secret on disk');
  assert.match(text, /"host": "git.example.com"/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  assert.equal(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64').length, 32);
});

test('a key file with loose permissions is tightened to 0600', async () => {
  const { keyFile, store } = await fresh();
  await store.set('git.example.com', SECRET);
  const { chmodSync } = await import('node:fs');
  chmodSync(keyFile, 0o644);
  await store.set('other.example.com', SECRET);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
});

test('the wrong key gives a clear error, not garbage', async () => {
  const { dir, file, store } = await fresh();
  await store.set('git.example.com', SECRET, { username: 'alice' });
  const otherKey = join(dir, 'other.key');
  const wrong = new CredentialStore(file, new FileKeyProvider(otherKey));
  assert.deepEqual(wrong.list().map((c) => c.host), ['git.example.com'], 'listing needs no key');
  try {
    wrong.resolve('git.example.com');
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(e instanceof AirlockError);
    assert.equal(e.code, 'internal');
    assert.match(e.message, /git\.example\.com cannot be decrypted \(wrong key file\?\)/);
  }
});

test('a corrupt key file or credentials file gives a clear error', async () => {
  const a = await fresh();
  writeFileSync(a.keyFile, 'dG9vIHNob3J0\n', { mode: 0o600 });
  try {
    await a.store.set('git.example.com', SECRET);
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(e instanceof AirlockError);
    assert.match(e.message, /credential key file .* is corrupt/);
  }
  const b = await fresh();
  writeFileSync(b.file, '{ not json', { mode: 0o600 });
  try {
    b.store.list();
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(e instanceof AirlockError);
    assert.match(e.message, /credentials file .* is corrupt/);
  }
});

test('host keys are normalised: case, default port 443, IPv6 brackets', async () => {
  assert.equal(normaliseHostKey('GIT.Example.COM:443'), 'git.example.com');
  assert.equal(normaliseHostKey(' git.example.com '), 'git.example.com');
  assert.equal(normaliseHostKey('git.example.com:8443'), 'git.example.com:8443');
  assert.equal(normaliseHostKey('127.0.0.1:443'), '127.0.0.1');
  assert.equal(normaliseHostKey('[::1]:8443'), '[::1]:8443');
  assert.equal(normaliseHostKey('[::1]'), '[::1]');
  const { store } = await fresh();
  await store.set('GIT.example.com:443', SECRET);
  assert.deepEqual(store.list().map((c) => c.host), ['git.example.com']);
  assert.ok(store.resolve('git.example.com'));
  assert.equal(await store.remove('git.example.com:443'), true);
});

test('invalid hosts are refused with a bad-request AirlockError', async () => {
  const { store } = await fresh();
  for (const bad of ['', 'has space.com', 'a/b', 'user@host', 'host:99999', 'host:0', 'host:port', 'https://host', 'a..b', '[::1', 'h:1:2']) {
    let err: unknown = null;
    try {
      await store.set(bad, SECRET);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof AirlockError, `"${bad}" was accepted (${String(err)})`);
    assert.equal((err as AirlockError).code, 'bad-request', `"${bad}": ${(err as Error).message}`);
  }
  assert.deepEqual(store.list(), []);
});

test('brackets hold only IPv6 addresses', async () => {
  assert.throws(() => normaliseHostKey('[notv6]:1'), AirlockError);
});

test('a running store sees a credential set by another process (the CLI) within about a second', async () => {
  const { file, keyFile, store } = await fresh();
  await store.set('git.example.com', 'first-secret-value', { username: 'alice' });
  assert.match(store.resolve('git.example.com')!.header, /^Basic /);
  await new Promise((r) => setTimeout(r, 50)); // a later clock tick than the first write (see the next test)
  const cli = new CredentialStore(file, new FileKeyProvider(keyFile));
  await cli.set('git.example.com', 'second-secret-value', { username: 'alice' });
  const want = `Basic ${Buffer.from('alice:second-secret-value').toString('base64')}`;
  let seen = '';
  for (let i = 0; i < 40 && seen !== want; i++) {
    await new Promise((r) => setTimeout(r, 100));
    seen = store.resolve('git.example.com')?.header ?? '';
  }
  assert.equal(seen, want);
  await cli.remove('git.example.com');
  let gone = false;
  for (let i = 0; i < 40 && !gone; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gone = store.resolve('git.example.com') === null;
  }
  assert.ok(gone, 'removal by another process seen');
});

test('a credential another process sets right after a lookup is used at once (the file is watched), not a second later', async () => {
  const { file, keyFile, store } = await fresh();
  try {
    assert.equal(store.resolve('git.example.com'), null); // the gateway looked: nothing stored yet
    const cli = new CredentialStore(file, new FileKeyProvider(keyFile));
    const t0 = Date.now();
    await cli.set('git.example.com', 'fresh-secret-value', { username: 'alice' });
    let seen = null;
    while (seen === null && Date.now() - t0 < 800) {
      await new Promise((r) => setTimeout(r, 10));
      seen = store.resolve('git.example.com');
    }
    assert.ok(seen, 'seen within 800 ms (the cache alone would wait a whole second)');
  } finally {
    store.close();
  }
});

test('a change by another process is seen even when the file mtime did not move',
  async () => {
    const { file, keyFile, store } = await fresh();
    await store.set('git.example.com', 'first-secret-value', { username: 'alice' });
    const tick = Math.floor(Date.now() / 1000); // whole seconds: exact through utimes
    utimesSync(file, tick, tick);
    assert.ok(store.resolve('git.example.com'));
    await new CredentialStore(file, new FileKeyProvider(keyFile)).set('git.example.com', 'second-secret-value', { username: 'alice' });
    utimesSync(file, tick, tick); // what a coarse filesystem clock does to two quick writes
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(store.resolve('git.example.com')?.header, `Basic ${Buffer.from('alice:second-secret-value').toString('base64')}`);
  });

test('processes that set credentials at the same moment each keep their entry (the file is locked)', async () => {
  const { file, keyFile } = await fresh();
  const N = 8;
  const go = Date.now() + 2000; // every child waits for the same moment before it writes
  const script = (i: number): string => `
    const { CredentialStore, FileKeyProvider } = await import(${JSON.stringify(new URL('../../main/credentials/credential-store.ts', import.meta.url).href)});
    const store = new CredentialStore(${JSON.stringify(file)}, new FileKeyProvider(${JSON.stringify(keyFile)}));
    while (Date.now() < ${go}) {}
    await store.set('host-${i}.example.com', 'secret-of-${i}');`;
  await Promise.all(Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(i)], { stdio: ['ignore', 'inherit', 'inherit'] });
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve();
      else reject(new Error(`child ${i} exited ${code}`));
    });
  })));
  const store = new CredentialStore(file, new FileKeyProvider(keyFile));
  assert.deepEqual(store.list().map((c) => c.host).sort(), Array.from({ length: N }, (_, i) => `host-${i}.example.com`).sort());
  for (let i = 0; i < N; i++) assert.equal(store.resolve(`host-${i}.example.com`)!.header, `Basic ${Buffer.from(`x-access-token:secret-of-${i}`).toString('base64')}`);
  assert.equal(existsSync(`${file}.lock`), false, 'no lock left behind');
});

test('a lock held by a live command makes set wait, then fail with a clear conflict; a dead one\'s lock is taken over', async () => {
  const { file, keyFile } = await fresh();
  const store = new CredentialStore(file, new FileKeyProvider(keyFile), { retries: 3, minTimeout: 20, maxTimeout: 20 });
  const release = await lock(file, { realpath: false });
  try {
    const started = Date.now();
    assert.equal(await airlockErrorCodeAsync(() => store.set('git.example.com', SECRET)), 'conflict');
    assert.ok(Date.now() - started >= 50, 'it waited before giving up');
    await assert.rejects(store.remove('git.example.com'), /locked by another airlock command .*credentials\.json\.lock/);
  } finally {
    await release();
  }
  // Released: the next set goes through.
  await store.set('git.example.com', SECRET);
  // A lock directory left by a process that died (not refreshed for more than 10 s) is taken over.
  mkdirSync(`${file}.lock`);
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(`${file}.lock`, old, old);
  await store.set('other.example.com', SECRET);
  assert.deepEqual(store.list().map((c) => c.host).sort(), ['git.example.com', 'other.example.com']);
  assert.equal(existsSync(`${file}.lock`), false);
});
