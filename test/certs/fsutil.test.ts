// Files other processes read: written whole (rename) or created once (hard link), never seen half-written.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createFileOnce, renameRetrying, writeFileAtomic } from '../../certs/fsutil';
import { makeTempDir, removeDir } from '../helpers/tmp';

const dirs: string[] = [];
after(async () => { for (const d of dirs) await removeDir(d); });
async function dir(): Promise<string> {
  const d = await makeTempDir('airlock-fsutil-');
  dirs.push(d);
  return d;
}

test('writeFileAtomic replaces the file with its mode and leaves no temporary file', async () => {
  const d = await dir();
  const f = join(d, 'a');
  writeFileAtomic(f, 'one\n', 0o600);
  writeFileAtomic(f, 'two\n', 0o644);
  assert.equal(readFileSync(f, 'utf8'), 'two\n');
  if (process.platform !== 'win32') assert.equal(statSync(f).mode & 0o777, 0o644);
  assert.deepEqual(readdirSync(d), ['a']);
});

test('createFileOnce creates a missing file and leaves an existing one as it is', async () => {
  const d = await dir();
  const f = join(d, 'key');
  assert.equal(createFileOnce(f, 'first\n', 0o600), true);
  assert.equal(createFileOnce(f, 'second\n', 0o600), false);
  assert.equal(readFileSync(f, 'utf8'), 'first\n');
  if (process.platform !== 'win32') assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(d), ['key']);
});

test('createFileOnce without hard links (a fake link that fails as exFAT does) creates once by exclusive create; other errors surface', async () => {
  // This machine has no file system without hard links; the fake link stands in for one.
  for (const code of ['EPERM', 'ENOTSUP', 'ENOSYS', 'EISDIR', 'EINVAL']) { // EISDIR: Windows on exFAT (nodejs/node#65817)
    const d = await dir();
    const f = join(d, 'key');
    const noLinks = (): never => { throw Object.assign(new Error(`link: ${code}`), { code }); };
    assert.equal(createFileOnce(f, 'first\n', 0o600, noLinks), true, code);
    assert.equal(createFileOnce(f, 'second\n', 0o600, noLinks), false, code);
    assert.equal(readFileSync(f, 'utf8'), 'first\n');
    if (process.platform !== 'win32') assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(d), ['key'], `${code}: no temporary file left`);
  }
  const d = await dir();
  const f = join(d, 'key');
  const full = (): never => { throw Object.assign(new Error('link: ENOSPC'), { code: 'ENOSPC' }); };
  assert.throws(() => createFileOnce(f, 'x\n', 0o600, full), /ENOSPC/);
  assert.deepEqual(readdirSync(d), [], 'nothing created, no temporary file left');
});

test('processes that create the same file at once: one wins, every one reads the winner\'s whole content', async () => {
  const d = await dir();
  const f = join(d, 'key');
  const N = 8;
  const go = Date.now() + 1500; // every child waits for the same moment before it creates
  const script = `
    const { createFileOnce } = await import(${JSON.stringify(new URL('../../certs/fsutil.ts', import.meta.url).href)});
    const { readFileSync } = await import('node:fs');
    while (Date.now() < ${go}) {}
    const created = createFileOnce(${JSON.stringify(f)}, 'content of ' + process.pid + '\\n' + 'x'.repeat(65536), 0o600);
    console.log(JSON.stringify({ created, read: readFileSync(${JSON.stringify(f)}, 'utf8') }));`;
  const outs = await Promise.all(Array.from({ length: N }, () => new Promise<{ created: boolean; read: string }>((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b));
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(JSON.parse(out) as { created: boolean; read: string });
      else reject(new Error(`child exited ${code}`));
    });
  })));
  assert.equal(outs.filter((o) => o.created).length, 1);
  const content = readFileSync(f, 'utf8');
  assert.match(content, /^content of \d+\nx{65536}$/);
  for (const o of outs) assert.equal(o.read, content);
  assert.deepEqual(readdirSync(d), ['key']);
});

test('replacing a file Windows holds open (EPERM/EACCES/EBUSY for a moment) is tried again; elsewhere, and for other errors, the first error is final', () => {
  let calls = 0;
  const busyTwice = (): void => {
    calls++;
    if (calls <= 2) throw Object.assign(new Error('rename: EBUSY'), { code: 'EBUSY' });
  };
  renameRetrying('a', 'b', busyTwice, 'win32');
  assert.equal(calls, 3);
  calls = 0;
  assert.throws(() => renameRetrying('a', 'b', busyTwice, 'linux'), /EBUSY/);
  assert.equal(calls, 1);
  let tries = 0;
  const full = (): never => { tries++; throw Object.assign(new Error('rename: ENOSPC'), { code: 'ENOSPC' }); };
  assert.throws(() => renameRetrying('a', 'b', full, 'win32'), /ENOSPC/);
  assert.equal(tries, 1);
  tries = 0;
  const alwaysLocked = (): never => { tries++; throw Object.assign(new Error('rename: EPERM'), { code: 'EPERM' }); };
  const t0 = Date.now();
  assert.throws(() => renameRetrying('a', 'b', alwaysLocked, 'win32'), /EPERM/);
  assert.ok(tries > 3 && Date.now() - t0 < 5_000, `${tries} tries in ${Date.now() - t0} ms`);
});
