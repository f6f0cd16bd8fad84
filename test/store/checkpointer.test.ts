import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { sqlite } from '../../main/store/sqlite';
import { openStore } from '../../main/store';
import { WalCheckpointer } from '../../main/store/checkpointer';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { exchange } from './helpers';

const Database = sqlite();

const size = (f: string): number => {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
};

/** Records `batches` batches of `rows` exchanges with a 4 KiB body, one flush each, `gapMs` apart. */
async function recordBatches(store: ReturnType<typeof openStore>, batches: number, rows: number, gapMs: number): Promise<void> {
  const body = Buffer.alloc(4096, 0x61);
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < rows; i++) store.exchanges.record(exchange(store.exchanges.nextId(), { responseBody: body }));
    store.exchanges.flush();
    await new Promise((r) => setTimeout(r, gapMs));
  }
}

test('inline writer: the WAL is copied into the database by the checkpoint thread, never by the writing connection', async () => {
  const dir = await makeTempDir('airlock-ckpt-');
  const file = `${dir}/a.db`;
  const errors: unknown[] = [];
  const store = openStore(file, { writer: 'inline', onError: (e) => errors.push(e) });
  try {
    const before = size(file);
    // ~30 MB of records over ~2 s: with automatic checkpoints off on the writing connection and no
    // checkpoint thread, the WAL would hold all of it and the database file would not grow.
    await recordBatches(store, 40, 180, 50);
    const deadline = Date.now() + 5_000;
    while (size(file) - before < 20e6 && Date.now() < deadline) {
      await recordBatches(store, 1, 1, 100);
    }
    assert.ok(size(file) - before > 20e6, `the database file grew by ${size(file) - before} bytes`);
    assert.ok(size(`${file}-wal`) < 20e6, `the WAL was started over (${size(`${file}-wal`)} bytes)`);
    // The writing connection's own automatic checkpoints are off while the thread runs.
    const other = new Database(file, { readonly: true });
    try {
      assert.equal((other.prepare('SELECT count(*) AS n FROM exchanges').get() as { n: number }).n, store.exchanges.count());
    } finally {
      other.close();
    }
    assert.deepEqual(errors, []);
  } finally {
    store.close();
    await removeDir(dir);
  }
  assert.ok(size(`${file}-wal`) === 0, 'close leaves an empty WAL');
});

test('a checkpoint thread that cannot start is reported once and checkpoints go back to the writing connection', async () => {
  const dir = await makeTempDir('airlock-ckpt-fail-');
  const file = `${dir}/a.db`;
  const errors: Error[] = [];
  const store = openStore(file, { writer: 'inline', testWriterFault: 'checkpoint', onError: (e) => errors.push(e as Error) });
  try {
    await recordBatches(store, 3, 10, 20);
    const deadline = Date.now() + 5_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /checkpoint thread .*checkpoints run on the writing thread again/);
    // 1000 pages of 16 KiB = 16 MB: past that, SQLite's automatic checkpoint starts the WAL over.
    await recordBatches(store, 30, 200, 0);
    assert.ok(size(`${file}-wal`) < 40e6, `automatic checkpoints are back (WAL ${size(`${file}-wal`)} bytes)`);
    assert.equal(store.exchanges.count(), 30 + 6000);
    assert.equal(errors.length, 1, 'reported once');
  } finally {
    store.close();
    await removeDir(dir);
  }
});

test('past the WAL limit the writer restarts the WAL itself', async () => {
  const dir = await makeTempDir('airlock-ckpt-limit-');
  const file = `${dir}/a.db`;
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (x BLOB)');
    let restarts = 0;
    const failures: string[] = [];
    const c = new WalCheckpointer(file, () => {
      restarts++;
      db.pragma('wal_checkpoint(RESTART)');
    }, (r) => failures.push(r), { walLimitBytes: 100_000, everyMs: 0 });
    try {
      for (let i = 0; i < 50; i++) db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(8192));
      c.afterCommit();
      assert.equal(restarts, 1);
      assert.equal(c.stats.inline, 1);
      db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(10));
      assert.ok(size(`${file}-wal`) > 100_000, 'the file keeps its size; the next writes reuse it from the start');
      assert.deepEqual(failures, []);
    } finally {
      c.close();
    }
  } finally {
    db.close();
    await removeDir(dir);
  }
});

test('past the WAL limit, a reader holding a snapshot (an export, audit verify, a paused CLI) never stalls the writer', async () => {
  const dir = await makeTempDir('airlock-ckpt-reader-');
  const file = `${dir}/airlock.db`;
  const store = openStore(file, { testWalLimitBytes: 256 * 1024 });
  const reader = new Database(file, { readonly: true });
  try {
    await recordBatches(store, 1, 10, 0);
    // Another connection's read transaction: the WAL cannot start over while it lasts.
    reader.pragma('busy_timeout = 5000');
    reader.exec('BEGIN');
    assert.ok((reader.prepare('SELECT count(*) AS n FROM exchanges').get() as { n: number }).n >= 10);
    const body = Buffer.alloc(4096, 0x62);
    let slowest = 0;
    // ~1.6 MB per batch, 300 ms apart: each batch past the first finds the WAL over its limit.
    for (let b = 0; b < 6; b++) {
      for (let i = 0; i < 400; i++) store.exchanges.record(exchange(store.exchanges.nextId(), { responseBody: body }));
      const t0 = performance.now();
      store.exchanges.flush();
      slowest = Math.max(slowest, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(size(`${file}-wal`) > 256 * 1024, 'the WAL went past its limit');
    // Before: each RESTART waited SQLite's 5 s busy timeout for the reader, on the proxy's thread.
    assert.ok(slowest < 2_500, `a flush took ${slowest.toFixed(0)} ms while a reader held a snapshot`);
    reader.exec('COMMIT');
    // The reader gone, a later restart starts the WAL over (writes go to its start again).
    await recordBatches(store, 3, 50, 300);
    assert.equal(store.exchanges.count(), 10 + 6 * 400 + 150);
  } finally {
    if (reader.inTransaction) reader.exec('COMMIT');
    reader.close();
    store.close();
    await removeDir(dir);
  }
});
