// openStore: one SQLite file (WAL) holding agents, sessions, exchanges, reviews and the audit chain.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AirlockError } from '../contract/errors';
import { createAgentsRepo } from './agents';
import { createAuditLog } from './audit';
import { BUSY_TIMEOUT_MS, createWriteQueue } from './exchanges';
import { normalizeSecrets } from './mask';
import { migrate } from './migrations';
import { sqlite, type SqliteDatabase } from './sqlite';
import { CACHE_KIB } from './write-worker';
import { createReviewsRepo } from './reviews';
import { recoverRecord } from './recovery';
import type { Store, StoreOptions } from './types';

/** Page size of a newly created database file. */
export const PAGE_SIZE = 16384;

export function openStore(file: string, opts: StoreOptions = {}): Store {
  const path = resolve(file);
  const now = opts.now ?? (() => new Date());
  const onError = opts.onError ?? ((err: unknown) => console.error('airlock store:', err));

  mkdirSync(dirname(path), { recursive: true });
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600)); // the record holds request bodies: owner-only

  const Database = sqlite();
  let db: SqliteDatabase;
  try {
    db = new Database(path);
  } catch (err) {
    throw new AirlockError('unavailable', `Cannot open the database ${path}: ${(err as Error).message}.`, { file: path });
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // A new file gets 16 KiB pages (SQLite's default is 4 KiB): an exchange with a 1 KiB body is ~1.6 KB,
    // so small pages mean a WAL frame write (and a checkpoint copy) every two or three rows. Measured
    // 24 -> 18 us per recorded exchange (docs/decisions.md). Only possible while the file is empty.
    if (db.pragma('page_count', { simple: true }) === 0) db.pragma(`page_size = ${PAGE_SIZE}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new AirlockError('unavailable', `The database ${path} cannot use WAL journaling (got ${String(mode)}).`);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection; inserts touch only the
    // right edge of each B-tree and a page of the session view a few dozen pages, so 4 MB is
    // plenty and the gateway stays ~12 MB smaller under load (docs/decisions.md).
    db.pragma(`cache_size = -${CACHE_KIB}`);
    migrate(db, path);
  } catch (err) {
    db.close();
    if (err instanceof AirlockError) throw err;
    throw new AirlockError('unavailable', `Cannot open the database ${path}: ${(err as Error).message}.`, { file: path });
  }

  // Every stored credential, in each of its forms: masked in exchanges, reviews and audit details alike.
  let secrets: string[] = [];
  const audit = createAuditLog(db, now, () => secrets);
  const agents = createAgentsRepo(db, now);
  opts.testConnection?.(db);
  const queue = createWriteQueue(db, audit, { now, onError, onHealth: opts.onRecordHealth, normalizeSecrets, maxQueued: opts.maxQueuedWrites, writer: opts.writer, backgroundCheckpoints: opts.backgroundCheckpoints, testWriterFault: opts.testWriterFault, testWalLimitBytes: opts.testWalLimitBytes, seal: opts.seal });
  const reviews = createReviewsRepo(db, audit, now, () => secrets);
  let closed = false;

  return {
    file: path,
    agents,
    sessions: queue.sessions,
    exchanges: queue.exchanges,
    reviews,
    audit,
    recover(input) {
      queue.exchanges.flush(); // whatever is queued is written first: it is not missing
      return recoverRecord(db, audit, input);
    },
    setSecrets(values) {
      secrets = normalizeSecrets(values);
      queue.setSecrets(values);
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        queue.close();
      } finally {
        db.close();
      }
    },
  };
}
