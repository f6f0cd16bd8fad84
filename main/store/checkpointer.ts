// WAL checkpoints on a small worker thread with its own SQLite connection, for the inline writer:
// the proxy's thread appends to the WAL (no fsync in WAL mode with synchronous=NORMAL) and never
// copies the WAL back into the database or waits for that copy's fsync.
import { statSync } from 'node:fs';
import { sqliteModulePath } from './sqlite';
import { Worker } from 'node:worker_threads';

/** At most one background checkpoint per this many milliseconds of writing. */
export const CHECKPOINT_EVERY_MS = 250;
/**
 * If the WAL still grows past this (checkpoints never caught up between two commits, so SQLite
 * could not start it over), the writer checkpoints it itself once, with RESTART.
 */
export const WAL_LIMIT_BYTES = 64 * 1024 * 1024;

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
if (workerData.fault) throw new Error('test fault: the checkpoint thread fails at start');
const Database = require(workerData.sqlitePath);
const db = new Database(workerData.dbPath);
db.pragma('cache_size = -256');
parentPort.on('message', (m) => {
  if (m === 'checkpoint') {
    // PASSIVE: copies what is committed without taking any lock a writer or reader needs; once it
    // has caught up, the next write transaction starts the WAL over from its beginning.
    db.pragma('wal_checkpoint(PASSIVE)');
  } else if (m === 'close') {
    db.close();
    parentPort.close();
  }
});
parentPort.postMessage('ready');
`;

/**
 * Runs `PRAGMA wal_checkpoint(PASSIVE)` off the caller's thread when asked (`afterCommit`, at most
 * every CHECKPOINT_EVERY_MS). The caller's connection must have `wal_autocheckpoint = 0`; if the
 * worker cannot start or stops, `onFailure` is told once so that the caller can turn it back on.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private ready = false;
  private failed = false;
  private closed = false;
  private last = 0;
  private readonly walPath: string;
  /** Counts for tests: checkpoints asked of the worker, and RESTART checkpoints the writer ran itself. */
  readonly stats = { background: 0, inline: 0 };

  constructor(
    dbPath: string,
    private readonly restartInline: () => void,
    private readonly onFailure: (reason: string) => void,
    private readonly opts: { walLimitBytes?: number; everyMs?: number; testFault?: boolean } = {},
  ) {
    this.walPath = `${dbPath}-wal`;
    this.worker = new Worker(SOURCE, {
      eval: true,
      workerData: { dbPath, sqlitePath: sqliteModulePath(), fault: opts.testFault === true },
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    this.worker.unref();
    this.worker.on('message', (m) => {
      if (m === 'ready') this.ready = true;
    });
    this.worker.on('error', (e) => this.fail(`the checkpoint thread failed (${(e as Error).message})`));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(`the checkpoint thread exited (code ${code})`);
    });
  }

  private fail(reason: string): void {
    if (this.failed || this.closed) return;
    this.failed = true;
    this.onFailure(reason);
  }

  /** Call after each committed write transaction; cheap when nothing is due. */
  afterCommit(now = Date.now()): void {
    if (this.failed || this.closed || now - this.last < (this.opts.everyMs ?? CHECKPOINT_EVERY_MS)) return;
    this.last = now;
    let walBytes = 0;
    try {
      walBytes = statSync(this.walPath).size;
    } catch {
      return; // no WAL yet
    }
    if (walBytes > (this.opts.walLimitBytes ?? WAL_LIMIT_BYTES)) {
      this.stats.inline++;
      this.restartInline();
      return;
    }
    if (!this.ready) return;
    this.stats.background++;
    this.worker.postMessage('checkpoint');
  }

  /** The thread closes its connection and ends by itself (it never holds the process open). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.postMessage('close');
  }
}
