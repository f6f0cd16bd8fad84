import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { openStore } from '../../main/store';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await removeDir(d);
});

const fixture = fileURLToPath(new URL('./fixtures/audit-writer.ts', import.meta.url));

test('audit events survive SIGKILL of a writer that is busy recording exchanges', async () => {
  const dir = await makeTempDir('airlock-durability-');
  dirs.push(dir);
  const file = join(dir, 'airlock.db');
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const seqs: number[] = [];
  let flushed = 0;
  let stderr = '';
  let buf = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000); // bound: tsx start-up on a slow machine + 5 s loop
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const [what, n] = line.split(' ');
      if (what === 'audit') seqs.push(Number(n));
      if (what === 'flushed') {
        flushed = Number(n);
        // well into the exchange loop: kill it mid-write
        if (flushed >= 3000) child.kill('SIGKILL');
      }
    }
  });
  const { signal } = await exited;
  clearTimeout(killer);
  assert.equal(signal, 'SIGKILL', `child should have been killed (stderr: ${stderr})`);
  assert.ok(seqs.length >= 100, `the child appended its 100 events (got ${seqs.length}; stderr: ${stderr})`);
  assert.ok(flushed >= 3000);

  const store = openStore(file);
  try {
    const v = store.audit.verify();
    assert.equal(v.ok, true, v.message);
    const present = new Set(store.audit.list().map((e) => e.seq));
    const missing = seqs.filter((s) => !present.has(s));
    assert.deepEqual(missing, [], 'every event whose append returned is on disk');
    assert.ok(v.events >= seqs.length);
    assert.ok(store.exchanges.count() >= flushed, 'every explicitly flushed exchange is on disk');
  } finally {
    store.close();
  }
});
