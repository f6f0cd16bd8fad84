// Batched exchange/session writes on a worker thread with its own SQLite
// connection, so inserts and WAL checkpoints never block the proxy's event loop.
// The main thread masks and serialises rows; the worker only runs prepared
// statements. `post()` never blocks; `flush()` waits (Atomics.wait, bounded)
// until the worker has committed everything posted, so reads see every record.
import { sqliteModulePath } from './sqlite';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/** One write, ready for SQLite: everything masked and serialised already. */
export type WireWrite =
  | ['x', unknown[]] // exchange row values (bodies included)
  | ['ss', string, string, string, string, string | null, string | null] // session start: id, agent, client address, started at, token, via
  | ['se', string, string]; // session end: ended at, id

export interface WriteWorkerSql {
  /** `UPDATE counters … RETURNING next` for a block of exchange ids (one parameter: the block size). */
  reserveIds: string;
  upsertExchange: string;
  insertSession: string;
  endSession: string;
}

/**
 * SQLite error codes that say the database as a whole cannot take writes now (a full disk, an I/O
 * error, a read-only or locked file): every write of a batch would fail alike, so they are not
 * tried one by one (each try could wait out the busy timeout) but handed back together.
 */
export const DATABASE_WIDE_ERRORS = '^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|NOMEM|CORRUPT|NOTADB|PROTOCOL)';

/**
 * The statements both writers run: builds `writeBatch(batch) → [write, error][]` (the writes that failed) over a
 * better-sqlite3 connection. Kept as plain JavaScript source so the worker can
 * evaluate it (it runs the same under tsx, the esbuild bundle and Electron).
 */
const WRITER_FACTORY = `function makeWriter(db, s) {
  const DATABASE_WIDE = new RegExp(${JSON.stringify(DATABASE_WIDE_ERRORS)});
  const upsertExchange = db.prepare(s.upsertExchange);
  const insertSession = db.prepare(s.insertSession);
  const endSession = db.prepare(s.endSession);
  function writeOne(w) {
    if (w[0] === 'x') upsertExchange.run(...w[1]); // as arguments: better-sqlite3 binds them without an array lookup per value
    else if (w[0] === 'ss') insertSession.run(w[1], w[2], w[3], w[4], w[5] ?? null, w[6] ?? null);
    else if (w[0] === 'se') endSession.run(w[1], w[2]);
  }
  const batchTx = db.transaction((batch) => { for (const w of batch) writeOne(w); });
  const oneTx = db.transaction(writeOne);
  const reserve = db.prepare(s.reserveIds);
  const reserveTx = db.transaction((n) => reserve.get(n));
  /** End (exclusive) of a newly reserved block of n exchange ids. */
  writeBatch.reserveIds = function reserveIds(n) {
    const r = reserveTx.immediate(n);
    if (!r) throw new Error('the exchange id counter is missing from the database');
    return r.next;
  };
  return writeBatch;
  function writeBatch(batch) {
    try {
      batchTx.immediate(batch);
      return [];
    } catch (batchErr) {
      const code = String(batchErr && batchErr.code || '');
      const message = String(batchErr && batchErr.message || batchErr);
      if (DATABASE_WIDE.test(code)) return batch.map((w) => [w, message, code]);
      // One write at a time: a bad row fails alone and comes back with its error; the rest are written.
      const failed = [];
      for (const w of batch) {
        try { oneTx.immediate(w); } catch (e) { failed.push([w, String(e && e.message || e), String(e && e.code || '')]); }
      }
      return failed;
    }
  }
}`;

const WORKER_SOURCE = `
const { parentPort, workerData, receiveMessageOnPort } = require('node:worker_threads');
const state = new Int32Array(workerData.state);
let db = null;
let pending = [];
// If anything goes wrong here (SQLite cannot be loaded or opened, a statement throws outside the
// per-row handling), nothing already handed over is lost: the writes not yet committed (the open
// group and every message still queued) go back to the proxy's thread, which writes them itself.
// The flag is set before the queue is drained, so a batch posted meanwhile is either drained here or
// seen by the main thread as posted to a failed worker (and written again there: upserts are idempotent).
process.on('uncaughtException', (err) => {
  Atomics.store(state, 3, 1);
  const batches = [pending];
  pending = [];
  for (let m = receiveMessageOnPort(parentPort); m; m = receiveMessageOnPort(parentPort)) {
    if (m.message && m.message.t === 'batch') batches.push(m.message.batch);
  }
  try { if (db && db.open) db.close(); } catch (_) {}
  workerData.errors.postMessage({ t: 'failed', error: String((err && err.message) || err), batches });
  Atomics.notify(state, 0);
  Atomics.notify(state, 1);
  Atomics.notify(state, 2);
  process.exit(1);
});
if (workerData.fault === 'start') throw new Error('test fault: the write worker fails at start');
const Database = require(workerData.sqlitePath);
db = new Database(workerData.dbPath);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
db.pragma('cache_size = -' + workerData.cacheKib);
// Fewer, larger checkpoints: they run here, off the proxy's thread, but still cost CPU.
db.pragma('wal_autocheckpoint = 4000');
${WRITER_FACTORY}
const writeBatch = makeWriter(db, workerData.sql);
const reserved = new Float64Array(workerData.reserved);
const COMMIT_MS = 20;
let pendingSeq = 0;
let batchesSeen = 0;
let timer = null;
function commit() {
  if (timer) { clearTimeout(timer); timer = null; }
  if (pending.length) {
    const failed = writeBatch(pending);
    pending = [];
    if (failed.length) workerData.errors.postMessage({ t: 'errors', failed });
  }
  Atomics.store(state, 0, pendingSeq);
  Atomics.notify(state, 0);
}
parentPort.on('message', (m) => {
  if (m.t === 'reserve') {
    try { reserved[0] = writeBatch.reserveIds(m.n); } catch (e) { reserved[0] = -1; workerData.errors.postMessage({ t: 'errors', errors: ['could not reserve exchange ids: ' + String(e && e.message || e)] }); }
    Atomics.store(state, 2, m.seq);
    Atomics.notify(state, 2);
  } else if (m.t === 'batch') {
    if (workerData.fault === 'batch' && ++batchesSeen === 3) {
      for (const w of m.batch) pending.push(w);
      throw new Error('test fault: the write worker fails at its third batch');
    }
    // Small batches arrive often; they are committed together (one transaction per COMMIT_MS),
    // or at once when the main thread waits for them.
    for (const w of m.batch) pending.push(w);
    pendingSeq = m.seq;
    if (m.now) commit();
    else if (!timer) timer = setTimeout(commit, COMMIT_MS);
  } else if (m.t === 'close') {
    commit();
    db.close();
    Atomics.store(state, 1, 1);
    Atomics.notify(state, 1);
  }
});
`;

/** SQLite page cache per connection, KiB (better-sqlite3's build default is 16 000). */
export const CACHE_KIB = 4000;
/**
 * The worker's connection only appends: it touches the right edge of the table and of each index
 * (a few dozen pages), so a smaller cache costs it nothing (10.3 vs 10.2 us of CPU per row at 4000
 * and 1000 KiB) and keeps up to 3 MB out of the process.
 */
export const WORKER_CACHE_KIB = 1000;

/** Writes SQLite refused, each with its error message and code (the caller keeps them: nothing recorded is dropped here). */
export type FailedWrites = Array<[WireWrite, string, string]>;

export type WriterFn = ((batch: WireWrite[]) => FailedWrites) & { reserveIds(n: number): number };

/** Where batched writes go: a worker thread, or inline on the caller's thread. */
export interface BatchWriter {
  /** Queues a batch; `now` asks for it to be committed without delay (someone will wait for it). */
  post(batch: WireWrite[], now?: boolean): void;
  /**
   * A block of `n` exchange ids: returns its end (exclusive); the block is [end - n, end).
   * `ahead` asks for the next block early without waiting (the worker reserves it between batches),
   * so the proxy's thread never waits for SQLite's write lock while the worker holds it.
   */
  reserveIds(n: number): number;
  reserveIdsAhead(n: number): void;
  waitIdle(timeoutMs?: number): void;
  close(): void;
}

/** The writers' statements over a connection on this thread: `fn(batch)` returns the writes that failed. */
export function createWriterFn(db: import('better-sqlite3').Database, sql: WriteWorkerSql): WriterFn {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function(`${WRITER_FACTORY}; return makeWriter;`)() as (d: unknown, s: WriteWorkerSql) => WriterFn;
  return make(db, sql);
}

/** Inline: the same statements in the caller's thread (no extra isolate; SQLite time on the event loop). */
export class InlineWriter implements BatchWriter {
  private readonly writeBatch: WriterFn;

  constructor(
    db: import('better-sqlite3').Database,
    sql: WriteWorkerSql,
    private readonly onFailed: (failed: FailedWrites) => void,
    /** Called after each committed batch (the background WAL checkpointer hooks in here). */
    private readonly afterCommit: () => void = () => {},
  ) {
    this.writeBatch = createWriterFn(db, sql);
  }

  reserveIds(n: number): number {
    return this.writeBatch.reserveIds(n);
  }

  /** Same connection, no contention: the block is taken when needed. */
  reserveIdsAhead(): void {}

  post(batch: WireWrite[]): void {
    if (batch.length === 0) return;
    const failed = this.writeBatch(batch);
    if (failed.length > 0) this.onFailed(failed);
    if (failed.length < batch.length) this.afterCommit();
  }

  waitIdle(): void {}

  close(): void {}
}

/** Test-only: make the worker fail at start, or at its third batch (to prove nothing is lost). */
export type WriteWorkerFault = 'start' | 'batch';

type FromWorker = { t: 'errors'; errors?: string[]; failed?: FailedWrites } | { t: 'failed'; error: string; batches: WireWrite[][] };

/**
 * Writes on a worker thread; if the worker cannot start or fails, it hands back every write it had
 * not committed and the writes continue inline on the caller's connection (`fallback`), so a broken
 * worker costs speed, never records.
 */
export class WriteWorker implements BatchWriter {
  private readonly worker: Worker;
  /** [0] last committed batch, [1] closed, [2] last answered id reservation, [3] failed. */
  private readonly state = new Int32Array(new SharedArrayBuffer(16));
  /** [0] end of the last reserved id block (-1: the reservation failed). */
  private readonly reserved = new Float64Array(new SharedArrayBuffer(8));
  private seq = 0;
  private reserveSeq = 0;
  /** The request sent ahead and not yet taken, if any. */
  private ahead: { seq: number; n: number } | null = null;
  private closed = false;
  /** Failed rows (and a failed worker's uncommitted writes) come back on their own port, readable synchronously. */
  private readonly errors: MessagePort;
  /** Set once the worker has failed: every write from then on runs here. */
  private fallback: BatchWriter | null = null;

  constructor(
    dbPath: string,
    sql: WriteWorkerSql,
    private readonly onError: (err: unknown) => void,
    private readonly onFailed: (failed: FailedWrites) => void,
    private readonly makeFallback: () => BatchWriter,
    fault?: WriteWorkerFault,
  ) {
    const sqlitePath = sqliteModulePath();
    const channel = new MessageChannel();
    this.errors = channel.port1;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { dbPath, sqlitePath, sql, cacheKib: WORKER_CACHE_KIB, state: this.state.buffer, reserved: this.reserved.buffer, errors: channel.port2, fault },
      transferList: [channel.port2],
      // It only moves batches into SQLite: a small heap keeps the process's RSS down.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    this.worker.unref();
    this.errors.on('message', (m: FromWorker) => this.receive(m));
    this.errors.unref();
    // A failure the worker could not hand its writes back for (out of memory, say): said so.
    this.worker.on('error', (e) => {
      if (!this.fallback) this.failOver(`the write worker stopped (${(e as Error).message}); writes it held may be lost`);
    });
    this.worker.on('exit', (code) => {
      if (!this.fallback && !this.closed) this.failOver(`the write worker exited (code ${code})`);
    });
  }

  private receive(m: FromWorker): void {
    if (m.t === 'failed') {
      this.failOver(m.error, m.batches);
      return;
    }
    for (const e of (m.errors ?? []).slice(0, 3)) this.onError(new Error(`store: ${e}`));
    if (m.failed && m.failed.length > 0) this.onFailed(m.failed);
  }

  /** Reads what the worker sent (row errors, a failure with its uncommitted writes) without waiting for the event loop. */
  private drain(): void {
    for (let m = receiveMessageOnPort(this.errors); m; m = receiveMessageOnPort(this.errors)) this.receive(m.message as FromWorker);
  }

  /** True once the worker has failed; on first noticing, takes its handed-back writes and switches to the fallback. */
  private checkFailed(): boolean {
    if (this.fallback) return true;
    if (Atomics.load(this.state, 3) === 0) return false;
    this.drain(); // takes the handed-back writes and switches to the fallback
    if (!this.fallback) this.failOver('the write worker failed');
    return true;
  }

  private failOver(reason: string, handedBack: WireWrite[][] = []): void {
    if (!this.fallback) {
      this.fallback = this.makeFallback();
      this.ahead = null;
      this.onError(new Error(`store: ${reason}; recording continues on the proxy's thread`));
      void this.worker.terminate();
    }
    for (const b of handedBack) this.fallback.post(b, true);
  }

  reserveIdsAhead(n: number): void {
    if (this.ahead || this.closed || this.checkFailed()) return;
    this.ahead = { seq: ++this.reserveSeq, n };
    this.worker.postMessage({ t: 'reserve', seq: this.ahead.seq, n });
  }

  /** Takes the block asked for ahead (or asks now) and waits for the worker's answer (bounded). */
  reserveIds(n: number): number {
    if (this.checkFailed()) return this.fallback!.reserveIds(n);
    if (!this.ahead || this.ahead.n !== n) {
      this.ahead = null;
      this.reserveIdsAhead(n);
    }
    const { seq } = this.ahead!;
    this.ahead = null;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.checkFailed()) return this.fallback!.reserveIds(n);
      const done = Atomics.load(this.state, 2);
      if (done >= seq) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('store: the write worker did not reserve exchange ids within 30 s');
      Atomics.wait(this.state, 2, done, Math.min(left, 1000));
    }
    const end = this.reserved[0]!;
    if (end < 0) throw new Error('store: the write worker could not reserve exchange ids (see the error above)');
    return end;
  }

  /** Hands a batch to the worker; never blocks. */
  post(batch: WireWrite[], now = false): void {
    if (this.checkFailed()) {
      this.fallback!.post(batch, now);
      return;
    }
    if (batch.length === 0 && !now) return;
    this.seq++;
    this.worker.postMessage({ t: 'batch', seq: this.seq, batch, now });
    // Failed between the check and the post: the worker may not have drained this one. Write it here
    // as well (an upsert of the same rows), rather than risk losing it.
    if (this.checkFailed()) this.fallback!.post(batch, now);
  }

  /** Waits until every posted batch is committed (bounded). */
  waitIdle(timeoutMs = 30_000): void {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.checkFailed()) return;
      const done = Atomics.load(this.state, 0);
      if (done >= this.seq) {
        this.drain();
        return;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`store: the write worker did not commit within ${timeoutMs} ms`);
      Atomics.wait(this.state, 0, done, Math.min(left, 1000));
    }
  }

  /** Commits what was posted, closes the worker's connection and ends the thread. */
  close(): void {
    if (this.closed) return;
    try {
      this.waitIdle();
    } finally {
      this.closed = true;
      if (!this.fallback) {
        this.worker.postMessage({ t: 'close' });
        Atomics.wait(this.state, 1, 0, 10_000);
        this.drain();
      }
      void this.worker.terminate();
      this.fallback?.close();
    }
  }
}
