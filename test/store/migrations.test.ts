import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { sqlite, type SqliteDatabase } from '../../main/store/sqlite';
import { tempDirs } from './helpers';
import { openStore, SCHEMA_VERSION } from '../../main/store';
import { PAGE_SIZE } from '../../main/store/store';
import { AirlockError } from '../../main/contract/errors';

const Database = sqlite();

const tempDir = tempDirs('airlock-migrations-');
async function dbFile() {
  return join(await tempDir(), 'nested', 'airlock.db');
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
  assert.equal(raw.pragma('page_size', { simple: true }), PAGE_SIZE, 'a new file gets the larger page size');
  const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => (r as { name: string }).name);
  for (const t of ['agent_tokens', 'agents', 'audit_events', 'counters', 'exchanges', 'review_events', 'reviews', 'sessions']) {
    assert.ok(tables.includes(t), t);
  }
  raw.close();

  const s2 = openStore(file);
  assert.deepEqual(s2.agents.list().map((a) => a.name), ['a']);
  assert.equal(s2.audit.verify().ok, true);
  s2.close();
});

test('an existing file keeps its page size (SQLite cannot change it in WAL mode) and still opens', async () => {
  const file = await dbFile();
  const s0 = openStore(file);
  s0.close();
  const other = (PAGE_SIZE as number) === 4096 ? 8192 : 4096;
  // A file made by an earlier Airlock (or by hand) with another page size: it opens as it is.
  const old = join(file, '..', 'old.db');
  const raw = new Database(old);
  raw.pragma(`page_size = ${other}`);
  raw.exec('CREATE TABLE t (x)');
  raw.exec('DROP TABLE t');
  raw.close();
  const s1 = openStore(old);
  s1.agents.add('a', []);
  s1.close();
  const check = new Database(old, { readonly: true });
  assert.equal(check.pragma('page_size', { simple: true }), other);
  assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  check.close();
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

/** A database file at schema `version`, as an older Airlock left it (open: the caller closes it). */
async function oldFile(version: number): Promise<{ file: string; db: SqliteDatabase }> {
  const { MIGRATIONS, migrate } = await import('../../main/store/migrations');
  const file = await dbFile();
  const { mkdirSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  migrate(db, file, MIGRATIONS.slice(0, version));
  return { file, db };
}

test('migration 2 renumbers existing exchanges in start order, moves their bodies inline and re-points reviews', async () => {
  const { file, db: v1 } = await oldFile(1);
  const ins = v1.prepare(
    `INSERT INTO exchanges (id, session_id, agent, started_at, method, scheme, host, port, path, kind, request_bytes, response_bytes,
       request_headers, request_body_complete, response_body_complete) VALUES (?, 's', 'a', ?, 'GET', 'https', 'h', 443, ?, 'other', 0, 0, '{}', 1, 1)`,
  );
  ins.run('zzz-late', '2026-01-02T00:00:00.000Z', '/late');
  ins.run('aaa-early', '2026-01-01T00:00:00.000Z', '/early');
  v1.prepare("INSERT INTO exchange_bodies VALUES ('zzz-late', 'response', x'6c617465')").run();
  v1.prepare("INSERT INTO exchange_bodies VALUES ('aaa-early', 'request', x'6561726c79')").run();
  v1.prepare(
    `INSERT INTO reviews (id, exchange_id, agent, kind, host, repo, state, created_at, expires_at, body_sha256, body_bytes, summary, detail_json)
     VALUES ('1', 'zzz-late', 'a', 'git-push', 'h', 'o/r.git', 'approved', 'x', 'x', 'x', 1, 's', '{}'),
            ('2', 'never-recorded', 'a', 'git-push', 'h', 'o/r.git', 'denied', 'x', 'x', 'x', 1, 's', '{}')`,
  ).run();
  v1.close();

  const store = openStore(file);
  try {
    const early = store.exchanges.get('1')!;
    const late = store.exchanges.get('2')!;
    assert.equal(early.path, '/early');
    assert.equal(early.requestBody?.toString(), 'early');
    assert.equal(early.responseBody, null);
    assert.equal(late.path, '/late');
    assert.equal(late.responseBody?.toString(), 'late');
    assert.equal(store.reviews.get('1')?.exchangeId, '2', 'the review follows its exchange');
    assert.equal(store.reviews.get('2')?.exchangeId, 'never-recorded', 'a reference to nothing recorded is kept as it was');
    assert.equal(store.exchanges.nextId(), '3', 'new ids continue after the migrated ones');
  } finally {
    store.close();
  }
});

test('migrations 3 and 4 keep what a version-2 file holds: bodies read as stored, sessions without a token label', async () => {
  const { MIGRATIONS } = await import('../../main/store/migrations');
  const { file, db: v2 } = await oldFile(2);
  v2.prepare("INSERT INTO sessions (id, agent, client_address, started_at) VALUES ('s1', 'a', '127.0.0.1', '2026-01-01T00:00:00.000Z')").run();
  v2.prepare(
    `INSERT INTO exchanges (id, session_id, agent, started_at, method, scheme, host, port, path, kind, request_bytes, response_bytes,
       request_headers, request_body_complete, response_body_complete, response_body) VALUES (1, 's1', 'a', '2026-01-01T00:00:01.000Z', 'GET', 'https', 'h', 443, '/', 'other', 0, 5, '{}', 1, 1, x'68656c6c6f')`,
  ).run();
  v2.close();
  const store = openStore(file);
  try {
    assert.equal(store.exchanges.get('1')!.responseBody?.toString(), 'hello');
    assert.deepEqual(store.sessions.list({}).map((s) => [s.id, s.token, s.via, s.exchangeCount]), [['s1', null, null, 1]]);
  } finally {
    store.close();
  }
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma('user_version', { simple: true }), MIGRATIONS.length);
  raw.close();
});
