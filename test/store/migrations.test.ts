import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { openStore, SCHEMA_VERSION } from '../../main/store';
import { AirlockError } from '../../main/contract/errors';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await removeDir(d);
});
async function dbFile() {
  const d = await makeTempDir('airlock-migrations-');
  dirs.push(d);
  return join(d, 'nested', 'airlock.db');
}

test('migrates an empty file, sets pragmas, and re-opening is idempotent', async () => {
  const file = await dbFile();
  const s1 = openStore(file);
  s1.agents.add('a', []);
  s1.audit.append({ actor: 'test', action: 'x', subject: 'y' });
  s1.close();
  s1.close(); // idempotent
  if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o777, 0o600);

  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => (r as { name: string }).name);
  for (const t of ['agent_tokens', 'agents', 'audit_events', 'exchange_bodies', 'exchanges', 'review_events', 'reviews', 'sessions']) {
    assert.ok(tables.includes(t), t);
  }
  raw.close();

  const s2 = openStore(file);
  assert.deepEqual(s2.agents.list().map((a) => a.name), ['a']);
  assert.equal(s2.audit.verify().ok, true);
  s2.close();
});

test('refuses a database newer than the code knows', async () => {
  const file = await dbFile();
  openStore(file).close();
  const raw = new Database(file);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(
    () => openStore(file),
    (e: unknown) => e instanceof AirlockError && e.code === 'unavailable' && /newer than this Airlock understands/.test(e.message),
  );
});
