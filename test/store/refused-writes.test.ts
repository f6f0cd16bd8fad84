// The store when SQLite refuses writes (SQLITE_FULL via max_page_count on the store's own connection,
// what a full disk answers): writes are held in order and written again; memory stays bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sqlite, type SqliteDatabase } from '../../main/store/sqlite';
import { openStore, type RecordHealth } from '../../main/store';
import { BUSY_TIMEOUT_MS, HELD_BODY_BYTES, RETRY_MS } from '../../main/store/exchanges';
import { exchange, tempDirs } from './helpers';

const Database = sqlite();

const tempDir = tempDirs('airlock-store-full-');

async function fullStore() {
  const dir = await tempDir();
  let db!: SqliteDatabase;
  const health: RecordHealth[] = [];
  const errors: string[] = [];
  const store = openStore(join(dir, 'airlock.db'), {
    testConnection: (c) => (db = c),
    onRecordHealth: (h) => health.push(h),
    onError: (e) => errors.push((e as Error).message),
  });
  return { store, db: () => db, health, errors };
}

test('refused writes are held, in order, and written when the database takes writes again; bodies beyond the bound keep their hash', async () => {
  const { store, db, health, errors } = await fullStore();
  try {
    const first = store.exchanges.nextId();
    store.exchanges.record(exchange(first));
    store.exchanges.flush();
    db().pragma(`max_page_count = ${db().pragma('page_count', { simple: true }) as number}`);

    // 1 MiB random (incompressible) response bodies: more than HELD_BODY_BYTES of them.
    const n = HELD_BODY_BYTES / (1024 * 1024) + 6;
    const bodies: Buffer[] = [];
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = store.exchanges.nextId();
      const body = randomBytes(1024 * 1024);
      bodies.push(body);
      ids.push(id);
      store.exchanges.record(exchange(id, { path: `/full/${i}`, responseBody: body, responseBodyComplete: true, responseBytes: body.length, requestBody: null }));
      if (i % 8 === 7) store.exchanges.flush();
    }
    store.exchanges.flush();
    const h = store.exchanges.health();
    assert.equal(h.ok, false);
    assert.ok(!h.ok && /SQLITE_FULL/.test(h.error));
    assert.ok(!h.ok && h.held >= n - 8, `held ${!h.ok && h.held}`);
    assert.equal(health.length, 1, 'one health change for the outage');
    // A write recorded later is also held behind them (not written out of order).
    const late = store.exchanges.nextId();
    store.exchanges.record(exchange(late, { path: '/late', requestBody: null, responseBody: null }));
    store.exchanges.flush();
    // Held, not lost from sight: lists, get and count show what is held (the database does not have it yet).
    const inDb = (id: string) => db().prepare('SELECT id FROM exchanges WHERE id = ?').get(Number(id)) !== undefined;
    assert.equal(inDb(late), false);
    assert.equal(store.exchanges.get(late)?.path, '/late');
    assert.ok(store.exchanges.get(ids[0]!)?.responseBody?.equals(bodies[0]!), 'a held body within the bound is shown');
    const last = store.exchanges.get(ids[n - 1]!);
    assert.equal(last?.responseBody, null); // past the bound: its hash only
    assert.equal(last?.responseBodySha256, createHash('sha256').update(bodies[n - 1]!).digest('hex'));
    assert.deepEqual(store.exchanges.list({ limit: 3 }).map((v) => v.id), [late, ids[n - 1], ids[n - 2]]);
    assert.deepEqual(store.exchanges.list({ limit: 2, before: ids[n - 1] }).map((v) => v.id), [ids[n - 2], ids[n - 3]]);
    assert.deepEqual(store.exchanges.list({ limit: 2, agent: 'nobody' }), []);
    assert.equal(store.exchanges.count(), n + 2);

    db().pragma('max_page_count = 1073741823');
    const deadline = Date.now() + RETRY_MS * 4;
    while (!store.exchanges.health().ok && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(store.exchanges.health().ok, true);
    assert.deepEqual(health.at(-1), { ok: true });

    let kept = 0;
    let hashed = 0;
    for (const [i, id] of ids.entries()) {
      const r = store.exchanges.get(id);
      assert.ok(r, `exchange ${i} missing`);
      assert.equal(r.path, `/full/${i}`);
      if (r.responseBody) {
        assert.ok(r.responseBody.equals(bodies[i]!), `body ${i} changed`);
        kept++;
      } else {
        // Over the bound: no bytes, but the hash and size of what was sent.
        assert.equal(r.responseBodyComplete, false);
        assert.equal(r.responseBodySha256, createHash('sha256').update(bodies[i]!).digest('hex'));
        assert.equal(r.responseBytes, 1024 * 1024);
        hashed++;
      }
    }
    assert.equal(kept + hashed, n);
    assert.ok(kept >= HELD_BODY_BYTES / (1024 * 1024) - 8 && hashed >= 6, `kept ${kept}, hashed ${hashed}`);
    assert.equal(store.exchanges.get(late)?.path, '/late');
    const ev = store.audit.list().filter((e) => e.action === 'record.recovered');
    assert.equal(ev.length, 1);
    assert.equal((ev[0]!.details as { bodiesDropped: number }).bodiesDropped, hashed);
    assert.equal(store.audit.verify().ok, true);
    assert.deepEqual(errors, []);
  } finally {
    store.close();
  }
});

test('a store closed while the database still refuses writes says how many it could not save', async () => {
  const { store, db, errors } = await fullStore();
  store.exchanges.record(exchange(store.exchanges.nextId()));
  store.exchanges.flush();
  db().pragma(`max_page_count = ${db().pragma('page_count', { simple: true }) as number}`);
  for (let i = 0; i < 40; i++) store.exchanges.record(exchange(store.exchanges.nextId(), { responseBody: randomBytes(64 * 1024), requestBody: null }));
  store.exchanges.flush();
  assert.equal(store.exchanges.health().ok, false);
  store.close();
  assert.ok(errors.some((e) => /recorded writes could not be saved at shutdown: database or disk is full/.test(e)), errors.join('\n'));
});

for (const writer of ['inline', 'worker'] as const) {
  test(`another process holding the write lock past the busy timeout (SQLITE_BUSY), ${writer} writer: writes are held, not tried one by one, and written once it lets go`, { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const file = join(dir, 'airlock.db');
    const health: RecordHealth[] = [];
    const store = openStore(file, { writer, onRecordHealth: (h) => health.push(h), onError: () => undefined });
    const other = new Database(file);
    try {
      store.exchanges.record(exchange(store.exchanges.nextId()));
      store.exchanges.flush();
      other.exec('BEGIN IMMEDIATE'); // e.g. a sqlite3 shell in the middle of a write transaction
      const ids = Array.from({ length: 20 }, () => store.exchanges.nextId());
      for (const id of ids) store.exchanges.record(exchange(id, { path: `/busy/${id}` }));
      const t0 = Date.now();
      store.exchanges.flush();
      const waited = Date.now() - t0;
      // One busy timeout for the batch, not one per row (20 rows × 5 s).
      assert.ok(waited < BUSY_TIMEOUT_MS * 2, `flush took ${waited} ms`);
      const h = store.exchanges.health();
      assert.ok(!h.ok && /SQLITE_BUSY|database is locked/.test(h.error), JSON.stringify(h));
      assert.ok(!h.ok && h.held >= ids.length);
      other.exec('COMMIT');
      const deadline = Date.now() + RETRY_MS * 4;
      while (!store.exchanges.health().ok && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(store.exchanges.health().ok, true);
      for (const id of ids) assert.equal(store.exchanges.get(id)?.path, `/busy/${id}`);
      assert.equal(store.audit.list().filter((e) => e.action === 'record.recovered').length, 1);
      assert.deepEqual(health.map((x) => x.ok), [false, true]);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      store.close();
    }
  });
}
