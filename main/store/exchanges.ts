// Exchanges and sessions: recorded through a write queue that is flushed in batches (one transaction per batch).
import { createHash } from 'node:crypto';
import { deflateRawSync, gunzipSync, gzip, gzipSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import type { ExchangeView, SessionView } from '../contract/views';
import { AirlockError } from '../contract/errors';
import { headerSecrets, maskBody, maskedHeadersJson, maskEncodedBody, maskQuery, maskTextPre, querySecrets, withMoreSecrets } from './mask';
import { WalCheckpointer } from './checkpointer';
import { bodiesSealPart, createSealer, pruneBoundary } from './seals';
import { createWriterFn, DATABASE_WIDE_ERRORS, InlineWriter, WriteWorker, type BatchWriter, type FailedWrites, type WireWrite, type WriteWorkerFault, type WriteWorkerSql } from './write-worker';
import type { AuditLog, ExchangeRecord, ExchangesRepo, ExportQuery, HeaderMap, RecordHealth, SessionRecord, SessionSummary, SessionsRepo } from './types';

/**
 * Inline, one transaction per 100 ms or 500 rows: fewer, larger transactions rewrite the partly
 * filled right-hand pages of the table and its five indexes less often (docs/decisions.md); a
 * full batch holds the event loop ~5 ms.
 */
export const FLUSH_INTERVAL_MS = 100;
export const FLUSH_ROWS = 500;
/** With the worker writer: how long the proxy's thread keeps writes before handing them over. */
export const WORKER_HANDOFF_MS = 5;
/** Beyond this many queued writes, record() flushes synchronously (bounds memory if the event loop never idles). */
export const MAX_QUEUED = 10_000;
/** While the database refuses writes: how often they are tried again, and how many are kept meanwhile. */
export const RETRY_MS = 2000;
export const HELD_MAX_WRITES = 100_000;
/** The store's busy timeout, and the shorter one a retry uses. */
export const BUSY_TIMEOUT_MS = 5000;
const RETRY_BUSY_MS = 100;
/** Bodies kept with held writes, in all; later held exchanges keep their hashes and sizes, not their bodies. */
export const HELD_BODY_BYTES = 64 * 1024 * 1024;
const DATABASE_WIDE = new RegExp(DATABASE_WIDE_ERRORS);
/**
 * Errors that say the database as a whole cannot take writes now (DATABASE_WIDE_ERRORS): the writes
 * are kept and tried again. Any other error belongs to one row (a constraint, say): that row is
 * reported and left out, and recording goes on.
 */
function refusesAllWrites(code: string): boolean {
  return DATABASE_WIDE.test(code);
}
const HEALTHY: RecordHealth = Object.freeze({ ok: true });
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

type SessionRow = { id: string; agent: string; client_address: string; started_at: string; ended_at: string | null; token: string | null; via: string | null };

interface ExchangeRow {
  id: number;
  session_id: string | null;
  agent: string;
  started_at: string;
  ended_at: string | null;
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
  kind: ExchangeRecord['kind'];
  verdict: ExchangeRecord['verdict'];
  rule_id: string | null;
  explanation: string | null;
  status: number | null;
  error: string | null;
  request_bytes: number;
  response_bytes: number;
  connect_ms: number | null;
  tls_ms: number | null;
  upstream_ms: number | null;
  total_ms: number | null;
  request_headers: string;
  response_headers: string | null;
  request_body_complete: number;
  response_body_complete: number;
  request_body_sha256: string | null;
  response_body_sha256: string | null;
  review_id: string | null;
  request_body: Buffer | null;
  response_body: Buffer | null;
  request_body_encoding: string | null;
  response_body_encoding: string | null;
}

const EXCHANGE_COLUMNS = [
  'id', 'session_id', 'agent', 'started_at', 'ended_at', 'method', 'scheme', 'host', 'port', 'path', 'kind',
  'verdict', 'rule_id', 'explanation', 'status', 'error', 'request_bytes', 'response_bytes', 'connect_ms', 'tls_ms',
  'upstream_ms', 'total_ms', 'request_headers', 'response_headers', 'request_body_complete', 'response_body_complete',
  'request_body_sha256', 'response_body_sha256', 'review_id', 'request_body', 'response_body',
  'request_body_encoding', 'response_body_encoding',
] as const;
/** Positions in a row's values (EXCHANGE_COLUMNS order) of the path and the error, as masked for the record. */
const PATH_SLOT = EXCHANGE_COLUMNS.indexOf('path');
const ERROR_SLOT = EXCHANGE_COLUMNS.indexOf('error');
/** Positions in a row's values (EXCHANGE_COLUMNS order) of each body and its encoding. */
const BODY_SLOTS = [[29, 31], [30, 32]] as const;

const VIEW_COLUMNS =
  'id, session_id, agent, started_at, ended_at, method, scheme, host, port, path, kind, verdict, rule_id, explanation, ' +
  'status, error, request_bytes, response_bytes, upstream_ms, total_ms, review_id';

/** Filter → column; each has an index `(column, id)` (migration 2). */
const FILTER_COLUMNS = { agent: 'agent', host: 'host', kind: 'kind', verdict: 'verdict', sessionId: 'session_id' } as const;
type FilterKey = keyof typeof FILTER_COLUMNS;
const FILTER_KEYS = Object.keys(FILTER_COLUMNS) as FilterKey[];

/** Ids reserved from `counters` per transaction. */
export const ID_BLOCK = 1000;

/** The one shape a session leaves the store in (console API and CLI alike). */
export function sessionView(s: SessionSummary): SessionView {
  return { id: s.id, agent: s.agent, clientAddress: s.clientAddress, startedAt: s.startedAt, endedAt: s.endedAt, token: s.token, via: s.via, exchangeCount: s.exchangeCount };
}

function rowToView(r: ExchangeRow): ExchangeView {
  return {
    id: String(r.id),
    agent: r.agent,
    sessionId: r.session_id,
    kind: r.kind,
    method: r.method,
    scheme: r.scheme,
    host: r.host,
    port: r.port,
    path: r.path,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    status: r.status,
    error: r.error,
    requestBytes: r.request_bytes,
    responseBytes: r.response_bytes,
    decision: r.verdict ? { verdict: r.verdict, ruleId: r.rule_id ?? '', explanation: r.explanation ?? '' } : null,
    reviewId: r.review_id,
    timings: { totalMs: r.total_ms, upstreamMs: r.upstream_ms },
  };
}

/**
 * Bodies at least this large are stored gzip-compressed, compressed on libuv's thread pool (an
 * agent's model requests carry the whole conversation: hundreds of KB of JSON each, ~3x smaller
 * gzipped). Smaller ones, and bodies that do not compress (already encoded, archives, images), are
 * stored as they passed.
 */
export const COMPRESS_MIN_BYTES = 16 * 1024;
/** Compressed only when gzip saves at least this fraction. */
const COMPRESS_MIN_SAVING = 0.1;

/** Whether `body` is worth compressing: large, not content-encoded, and its first 4 KiB shrink. */
function worthCompressing(body: Buffer | null, headers: HeaderMap | null | undefined): boolean {
  if (!body || body.length < COMPRESS_MIN_BYTES) return false;
  const enc = headers?.['content-encoding'];
  if (enc !== undefined && String(enc).trim() !== '' && String(enc).trim().toLowerCase() !== 'identity') return false;
  const sample = body.subarray(0, 4096);
  return deflateRawSync(sample, { level: 1 }).length <= sample.length * (1 - COMPRESS_MIN_SAVING);
}

/** The stored form of a body and its encoding (null: as it passed). */
function compressed(raw: Buffer, gz: Buffer): [Buffer, string | null] {
  return gz.length <= raw.length * (1 - COMPRESS_MIN_SAVING) ? [gz, 'gzip'] : [raw, null];
}

/** A stored body as it passed (decompressed). */
function storedBody(b: Buffer | null, encoding: string | null): Buffer | null {
  if (!b || encoding === null) return b;
  if (encoding === 'gzip') return gunzipSync(b);
  throw new AirlockError('internal', `A recorded body has an unknown encoding "${encoding}".`);
}

/** A row as the record it was written from: headers parsed, bodies decompressed, whole-body hashes derived. */
function rowToRecord(r: ExchangeRow): ExchangeRecord {
  const reqBody = storedBody(r.request_body, r.request_body_encoding);
  const resBody = storedBody(r.response_body, r.response_body_encoding);
  return {
    id: String(r.id),
    sessionId: r.session_id,
    agent: r.agent,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    method: r.method,
    scheme: r.scheme,
    host: r.host,
    port: r.port,
    path: r.path,
    kind: r.kind,
    verdict: r.verdict,
    ruleId: r.rule_id,
    explanation: r.explanation,
    status: r.status,
    error: r.error,
    requestBytes: r.request_bytes,
    responseBytes: r.response_bytes,
    timings: { connectMs: r.connect_ms, tlsMs: r.tls_ms, upstreamMs: r.upstream_ms, totalMs: r.total_ms },
    requestHeaders: JSON.parse(r.request_headers) as HeaderMap,
    responseHeaders: r.response_headers === null ? null : (JSON.parse(r.response_headers) as HeaderMap),
    requestBody: reqBody,
    responseBody: resBody,
    requestBodyComplete: r.request_body_complete !== 0,
    responseBodyComplete: r.response_body_complete !== 0,
    requestBodySha256: r.request_body_sha256 ?? wholeBodySha256(reqBody, r.request_body_complete),
    responseBodySha256: r.response_body_sha256 ?? wholeBodySha256(resBody, r.response_body_complete),
    reviewId: r.review_id,
  };
}

/**
 * The SELECT of an export scan, in id (start) order. A session or an agent is matched with `=` (not
 * `? IS NULL OR …`) so that its index serves the scan.
 */
function exportQuery(columns: string, q: ExportQuery): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.sessionId !== undefined) (where.push('session_id = ?'), args.push(q.sessionId));
  if (q.agent !== undefined) (where.push('agent = ?'), args.push(q.agent));
  if (q.since !== undefined) (where.push('started_at >= ?'), args.push(q.since));
  if (q.until !== undefined) (where.push('started_at < ?'), args.push(q.until));
  return { sql: `SELECT ${columns} FROM exchanges${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id`, args };
}

/**
 * Every exchange of an export, in full, read on `db`: any connection to a record, such as a read-only one
 * of its own that reads while the gateway writes (`records` is the store's own, flushed first).
 */
export function* readExchangeRecords(db: Database.Database, q: ExportQuery): Generator<ExchangeRecord> {
  const { sql, args } = exportQuery('*', q);
  for (const r of db.prepare<unknown[], ExchangeRow>(sql).iterate(...args)) yield rowToRecord(r);
}

/** One session row read on `db` (any connection to a record). */
export function readSession(db: Database.Database, id: string): SessionRecord | null {
  const r = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?').get(id);
  return r ? sessionRecord(r) : null;
}

function sessionRecord(r: SessionRow): SessionRecord {
  return { id: r.id, agent: r.agent, clientAddress: r.client_address, startedAt: r.started_at, endedAt: r.ended_at, token: r.token, via: r.via };
}

/** The hash recording left out: the stored body is the whole body as sent (see ExchangeRecord.requestBodySha256). */
function wholeBodySha256(body: Buffer | null, complete: number): string | null {
  return body && complete !== 0 ? createHash('sha256').update(body).digest('hex') : null;
}

function numOrNull(n: number | null | undefined): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/** An exchange id from a caller (a decimal integer); anything else is a clear error, not a silent miss. */
export function parseExchangeId(id: string, what = 'exchange id'): number {
  const n = /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : NaN;
  if (!Number.isSafeInteger(n)) throw new AirlockError('bad-request', `The ${what} "${id}" is not an exchange id (a positive whole number).`);
  return n;
}

function clampLimit(limit: number | undefined): number {
  return Math.max(1, Math.min(MAX_LIST_LIMIT, Math.floor(limit ?? DEFAULT_LIST_LIMIT) || DEFAULT_LIST_LIMIT));
}

export interface WriteQueue {
  exchanges: ExchangesRepo;
  sessions: SessionsRepo;
  setSecrets(values: string[]): void;
  /** Flushes and stops the timer; afterwards every write throws. */
  close(): void;
}

export function createWriteQueue(
  db: Database.Database,
  audit: AuditLog,
  opts: { now: () => Date; onError: (err: unknown) => void; onHealth?: (h: RecordHealth) => void; normalizeSecrets: (s: string[]) => string[]; maxQueued?: number; writer?: 'worker' | 'inline'; backgroundCheckpoints?: boolean; testWriterFault?: WriteWorkerFault | 'checkpoint'; testWalLimitBytes?: number; seal?: { everyMs?: number; sliceRows?: number } },
): WriteQueue {
  let storedSecrets: string[] = [];
  /** Writes already masked and serialised (at record time, so the records themselves die young). */
  let queue: WireWrite[] = [];
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  let closed = false;
  const maxQueued = Math.max(FLUSH_ROWS, opts.maxQueued ?? MAX_QUEUED);

  const sql: WriteWorkerSql = {
    reserveIds: "UPDATE counters SET next = next + ? WHERE name = 'exchange' RETURNING next",
    upsertExchange: `INSERT INTO exchanges (${EXCHANGE_COLUMNS.join(', ')}) VALUES (${EXCHANGE_COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT(id) DO UPDATE SET ${EXCHANGE_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')}`,
    insertSession: `INSERT INTO sessions (id, agent, client_address, started_at, token, via) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET agent = excluded.agent, client_address = excluded.client_address, started_at = excluded.started_at,
       token = excluded.token, via = excluded.via`,
    endSession: 'UPDATE sessions SET ended_at = ? WHERE id = ?',
  };
  // Inserts run inline (default) or, with writer 'worker', on a worker thread with its own connection
  // so the proxy's event loop never waits on SQLite or a checkpoint (one more isolate: more memory).
  // With the worker, queued writes are handed over every few milliseconds and the worker groups
  // them into one transaction per WORKER_COMMIT_MS: on the proxy's thread the records then die
  // young (a queue held for 100 ms survives scavenges and is copied into the old generation), while
  // a postMessage per exchange would cost more than it saves.
  const handOffMs = opts.writer === 'worker' ? WORKER_HANDOFF_MS : FLUSH_INTERVAL_MS;
  const inline = (): BatchWriter => new InlineWriter(db, sql, onFailed);
  // Inline, the inserts run here but the WAL is copied back into the database by a small thread of
  // its own (started with the first batch, so a read-only CLI never starts it): that copy and its
  // fsync were most of what inline recording cost the proxy (docs/decisions.md).
  let checkpointer: WalCheckpointer | null = null;
  let checkpointerFailed = false;
  /**
   * The WAL passed its limit: copy it back here and start it over, without waiting. A RESTART waits
   * (SQLite's busy handler: the 5 s busy timeout) for every reader to leave the WAL, and a reader may
   * hold a snapshot for a long time (an export, `audit verify`, a CLI paused by a pipe): the proxy's
   * thread would stall for the whole timeout at every try. With no timeout it copies what it can and
   * returns; the WAL starts over at a later try, once no reader holds it.
   */
  const restartCheckpoint = (): void => {
    const timeout = db.pragma('busy_timeout', { simple: true }) as number;
    db.pragma('busy_timeout = 0');
    try {
      db.pragma('wal_checkpoint(RESTART)');
    } finally {
      db.pragma(`busy_timeout = ${timeout}`);
    }
  };
  const afterCommit = (): void => {
    if (checkpointerFailed || closed) return;
    if (!checkpointer) {
      checkpointer = new WalCheckpointer(db.name, restartCheckpoint, (reason) => {
        checkpointerFailed = true;
        if (closed) return;
        db.pragma('wal_autocheckpoint = 1000');
        opts.onError(new Error(`store: ${reason}; checkpoints run on the writing thread again`));
      }, { testFault: opts.testWriterFault === 'checkpoint', walLimitBytes: opts.testWalLimitBytes });
      db.pragma('wal_autocheckpoint = 0');
    }
    checkpointer.afterCommit();
  };
  const worker: BatchWriter = opts.writer === 'worker'
    ? new WriteWorker(db.name, sql, opts.onError, onFailed, inline, opts.testWriterFault === 'checkpoint' ? undefined : opts.testWriterFault)
    : new InlineWriter(db, sql, onFailed, opts.backgroundCheckpoints === false ? undefined : afterCommit);

  // Seals (seals.ts): each row's digest is taken as it is handed to the writer; every few minutes the
  // rows written since the last seal are sealed into the audit chain.
  const sealer = createSealer(db, audit, { flush, canWrite: () => !failing && !closed, onError: opts.onError, ...opts.seal });

  // ---- when the database refuses writes: keep them, refuse new requests (the gateway asks health()), try again
  let failing: { since: string; error: string } | null = null;
  /** Writes the database refused, in the order they were recorded; written again when it takes them. */
  let held: WireWrite[] = [];
  let heldBodyBytes = 0;
  let heldDropped = 0;
  let heldBodiesDropped = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  let retryWrite: ReturnType<typeof createWriterFn> | null = null;

  function health(): RecordHealth {
    return failing ? { ok: false, since: failing.since, error: failing.error, held: held.length, dropped: heldDropped } : HEALTHY;
  }

  function describe(message: string, code: string): string {
    return code && !message.includes(code) ? `${message} (${code})` : message;
  }

  /** Keeps one refused write in memory (bounded: beyond it, bodies go first, then whole writes are counted and let go). */
  function hold(w: WireWrite): void {
    if (held.length >= HELD_MAX_WRITES) {
      heldDropped++;
      return;
    }
    if (w[0] === 'x') {
      const values = w[1];
      const n = ((values[BODY_SLOTS[0][0]] as Buffer | null)?.length ?? 0) + ((values[BODY_SLOTS[1][0]] as Buffer | null)?.length ?? 0);
      if (heldBodyBytes + n <= HELD_BODY_BYTES) heldBodyBytes += n;
      else if (n > 0) {
        // The row keeps the hash and size of each body (as a pruned row does), not the bytes.
        for (const [bodyAt, encAt] of BODY_SLOTS) {
          const completeAt = bodyAt - 5;
          const shaAt = bodyAt - 3;
          const body = values[bodyAt] as Buffer | null;
          if (!body) continue;
          values[shaAt] = keptHash(body, values[encAt] as string | null, values[completeAt] as number, values[shaAt] as string | null);
          values[completeAt] = 0;
          values[bodyAt] = null;
          values[encAt] = null;
        }
        sealer.wrote(values); // what will be written now
        heldBodiesDropped++;
      }
    }
    held.push(w);
  }

  /**
   * The exchanges held in memory while the database refuses writes, as rows (the last version of
   * each id): lists, `get` and `count` show them too, so an outage hides nothing it recorded.
   */
  function heldRows(): Map<number, ExchangeRow> {
    const rows = new Map<number, ExchangeRow>();
    for (const w of held) {
      if (w[0] !== 'x') continue;
      const row = {} as Record<string, unknown>;
      EXCHANGE_COLUMNS.forEach((c, i) => (row[c] = w[1][i]));
      rows.set(row.id as number, row as unknown as ExchangeRow);
    }
    return rows;
  }

  /** The writer's report of writes SQLite refused. */
  function onFailed(failed: FailedWrites): void {
    let first: [string, string] | null = null;
    let leftOut = 0;
    for (const [w, message, code] of failed) {
      if (!refusesAllWrites(code)) {
        // Reported, at most three a batch (a bad batch must not flood the log).
        if (++leftOut <= 3) opts.onError(new Error(`store: a recorded write was left out: ${describe(message, code)}`));
        continue;
      }
      first ??= [message, code];
      if (closed) continue;
      hold(w);
    }
    if (!first) return;
    if (closed) {
      opts.onError(new Error(`store: ${failed.length} recorded writes could not be saved at shutdown: ${describe(first[0], first[1])}`));
      return;
    }
    startFailing(first[0], first[1]);
  }

  function startFailing(message: string, code: string): void {
    if (!failing) {
      failing = { since: opts.now().toISOString(), error: describe(message, code) };
      if (opts.onHealth) opts.onHealth(health());
      else opts.onError(new Error(`store: the database refuses writes (${failing.error}); recorded writes are held until it takes them again`));
    }
    scheduleRetry();
  }

  function scheduleRetry(): void {
    if (retryTimer || closed) return;
    retryTimer = setTimeout(retryHeld, RETRY_MS);
    retryTimer.unref();
  }

  /** Writes the held writes again, on this connection; on success the outage ends (and is an audit event). */
  function retryHeld(): void {
    retryTimer = null;
    if (closed || !failing) return;
    clearTimers();
    for (const w of queue) hold(w);
    queue = [];
    const batch = held;
    held = [];
    heldBodyBytes = 0;
    retryWrite ??= createWriterFn(db, sql);
    // A try must not hold this thread for the whole busy timeout when another process keeps the
    // database locked: it fails fast and comes back in RETRY_MS.
    db.pragma(`busy_timeout = ${RETRY_BUSY_MS}`);
    let failedAgain: FailedWrites;
    try {
      try {
        retryWrite.reserveIds(0); // a write even when nothing is held (an id reservation may be what failed)
      } catch (e) {
        const code = String((e as { code?: string }).code ?? '');
        if (refusesAllWrites(code)) {
          failing.error = describe((e as Error).message, code);
          for (const w of batch) hold(w);
          scheduleRetry();
          return;
        }
      }
      failedAgain = retryWrite(batch);
    } finally {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
    const stillRefused = failedAgain.filter(([, , code]) => refusesAllWrites(code));
    if (stillRefused.length > 0) {
      // Kept in their order; the first error of this try is the one health() reports.
      failing.error = describe(stillRefused[0]![1], stillRefused[0]![2]);
      for (const [w] of stillRefused) hold(w);
      scheduleRetry();
      return;
    }
    for (const [, message, code] of failedAgain) opts.onError(new Error(`store: a recorded write was left out: ${describe(message, code)}`));
    const outage = failing;
    failing = null;
    const details = {
      since: outage.since, until: opts.now().toISOString(), error: outage.error,
      writesSaved: batch.length - failedAgain.length, writesDropped: heldDropped, bodiesDropped: heldBodiesDropped,
    };
    heldDropped = 0;
    heldBodiesDropped = 0;
    try {
      audit.append({ actor: 'system', action: 'record.recovered', subject: 'exchanges', details });
    } catch (e) {
      opts.onError(e);
    }
    opts.onHealth?.(health());
  }
  const getSession = db.prepare<[string], { id: string; agent: string; client_address: string; started_at: string; ended_at: string | null; token: string | null; via: string | null }>(
    'SELECT * FROM sessions WHERE id = ?',
  );
  const getExchange = db.prepare<[number], ExchangeRow>('SELECT * FROM exchanges WHERE id = ?');
  const countStmt = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM exchanges');
  const existsStmt = db.prepare<[number], { id: number }>('SELECT id FROM exchanges WHERE id = ?');
  // Exports: one statement per column list and filter set, prepared when first used.
  const exportStmts = new Map<string, Database.Statement<unknown[], ExchangeRow>>();
  const exportRows = (columns: string, q: ExportQuery): IterableIterator<ExchangeRow> => {
    const { sql, args } = exportQuery(columns, q);
    let stmt = exportStmts.get(sql);
    if (!stmt) exportStmts.set(sql, (stmt = db.prepare<unknown[], ExchangeRow>(sql)));
    return stmt.iterate(...args);
  };
  // Ids grow with start time, so the rows to prune are a prefix of the id order: the first row started
  // after the cutoff is found by walking only the old rows (no index on started_at, which every insert
  // would pay for). Retention deletes up to the end of a seal before it (seals.ts).
  const firstKeptStmt = db.prepare<{ cutoff: string }, { id: number }>('SELECT id FROM exchanges WHERE started_at >= :cutoff ORDER BY id LIMIT 1');
  const oldestStmt = db.prepare<{ cutoff: string }, { id: number }>('SELECT id FROM exchanges WHERE started_at < :cutoff ORDER BY id LIMIT 1');
  const pruneStmt = db.prepare<[number]>('DELETE FROM exchanges WHERE id <= ?');
  let nextId = 0;
  let idLimit = 0;

  // ---- the body budget (limitBodies): bytes of bodies stored, tracked as rows are queued
  let bodyLimit: number | null = null;
  let bodyBytes = 0;
  let bodyPruning: Promise<void> | null = null;
  const sumBodies = db.prepare<[], { n: number }>('SELECT coalesce(sum(length(request_body)), 0) + coalesce(sum(length(response_body)), 0) AS n FROM exchanges');
  // Rows below this id have had their bodies dropped already (kept in `counters` across restarts,
  // so a run does not walk the rows earlier runs emptied).
  const prunedBelowGet = db.prepare<[], { next: number }>("SELECT next FROM counters WHERE name = 'bodies-pruned-below'");
  const prunedBelowSet = db.prepare<[number]>("INSERT INTO counters (name, next) VALUES ('bodies-pruned-below', ?) ON CONFLICT(name) DO UPDATE SET next = max(next, excluded.next)");
  type BodyRow = Pick<ExchangeRow, 'id' | 'request_body' | 'response_body' | 'request_body_encoding' | 'response_body_encoding' | 'request_body_complete' | 'response_body_complete' | 'request_body_sha256' | 'response_body_sha256'>;
  const oldestBodies = db.prepare<[number], BodyRow>(
    `SELECT id, request_body, response_body, request_body_encoding, response_body_encoding, request_body_complete,
       response_body_complete, request_body_sha256, response_body_sha256
     FROM exchanges WHERE id >= ? AND (request_body IS NOT NULL OR response_body IS NOT NULL) ORDER BY id LIMIT 8`,
  );
  // Dropped bodies leave their part of the row's seal behind (seals.ts), so the seal still holds.
  const dropBodies = db.prepare<[string, string | null, string | null, number]>(
    `UPDATE exchanges SET bodies_sealed = ?, request_body_sha256 = ?, response_body_sha256 = ?,
       request_body_complete = CASE WHEN request_body IS NULL THEN request_body_complete ELSE 0 END,
       response_body_complete = CASE WHEN response_body IS NULL THEN response_body_complete ELSE 0 END,
       request_body = NULL, response_body = NULL, request_body_encoding = NULL, response_body_encoding = NULL
     WHERE id = ?`,
  );

  /** Counts a queued exchange's stored bodies against the budget; starts pruning when it is exceeded. */
  function countBodies(w: WireWrite): void {
    if (bodyLimit === null) return;
    const values = (w as ['x', unknown[]])[1];
    bodyBytes += ((values[BODY_SLOTS[0][0]] as Buffer | null)?.length ?? 0) + ((values[BODY_SLOTS[1][0]] as Buffer | null)?.length ?? 0);
    if (bodyBytes > bodyLimit && !bodyPruning) bodyPruning = pruneBodies().finally(() => { bodyPruning = null; });
  }

  /** The hash a dropped body leaves behind: the one recorded, or (for a body stored whole) its own. */
  function keptHash(body: Buffer | null, encoding: string | null, complete: number, sha: string | null): string | null {
    if (sha !== null || !body || complete === 0) return sha;
    return createHash('sha256').update(storedBody(body, encoding)!).digest('hex');
  }

  /** Measures, then drops the oldest bodies, 8 rows per turn of the event loop, until 90% of the limit is left. */
  async function pruneBodies(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    let count = 0;
    let freed = 0;
    let lastId = 0;
    try {
      // The running count is an estimate (a row recorded twice counts twice): measure before dropping anything.
      if (closed) return;
      post(true);
      worker.waitIdle();
      bodyBytes = sumBodies.get()!.n;
      while (!closed && bodyLimit !== null && bodyBytes > bodyLimit * 0.9) {
        post(true); // rows still queued are the newest; the oldest are on disk
        worker.waitIdle();
        const rows = oldestBodies.all(prunedBelowGet.get()?.next ?? 0);
        if (rows.length === 0) break;
        db.transaction(() => {
          for (const r of rows) {
            if (bodyBytes <= bodyLimit! * 0.9) break;
            dropBodies.run(
              bodiesSealPart({
                req: r.request_body, reqEncoding: r.request_body_encoding, reqComplete: r.request_body_complete, reqSha: r.request_body_sha256,
                res: r.response_body, resEncoding: r.response_body_encoding, resComplete: r.response_body_complete, resSha: r.response_body_sha256,
              }, null),
              keptHash(r.request_body, r.request_body_encoding, r.request_body_complete, r.request_body_sha256),
              keptHash(r.response_body, r.response_body_encoding, r.response_body_complete, r.response_body_sha256),
              r.id,
            );
            const n = (r.request_body?.length ?? 0) + (r.response_body?.length ?? 0);
            bodyBytes -= n;
            freed += n;
            count++;
            lastId = r.id;
            prunedBelowSet.run(r.id + 1);
          }
        }).immediate();
        await new Promise((r) => setImmediate(r));
      }
      if (count > 0 && !closed) {
        audit.append({ actor: 'system', action: 'retention.pruned', subject: 'bodies', details: { count, freedBytes: freed, maxBytes: bodyLimit, throughId: lastId, reason: 'the bodies stored passed bodyStoreBytes; the oldest went first' } });
      }
    } catch (err) {
      if (!closed) opts.onError(err);
    }
  }

  /** One prepared statement per combination of filters (at most 2^5 + 2^5 with a cursor). */
  const listStatements = new Map<string, Database.Statement<unknown[], ExchangeRow>>();
  function listStatement(keys: FilterKey[], cursor: boolean): Database.Statement<unknown[], ExchangeRow> {
    const key = keys.join(',') + (cursor ? '<' : '');
    let st = listStatements.get(key);
    if (!st) {
      const where = keys.map((k) => `${FILTER_COLUMNS[k]} = ?`);
      if (cursor) where.push('id < ?');
      st = db.prepare<unknown[], ExchangeRow>(
        `SELECT ${VIEW_COLUMNS} FROM exchanges ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      );
      listStatements.set(key, st);
    }
    return st;
  }

  /** Masks and serialises one exchange for the writer (main thread, when it is recorded). */
  function toWire(rec: ExchangeRecord): WireWrite {
    const t = rec.timings ?? { connectMs: null, tlsMs: null, upstreamMs: null, totalMs: null };
    // The stored credentials, and those this exchange carries in its own sensitive headers (an agent's
    // API key, a session cookie): masked wherever else in its record they appear (an echo in a body).
    const own = rec.path.includes('?') ? [...headerSecrets(rec.requestHeaders), ...querySecrets(rec.path)] : headerSecrets(rec.requestHeaders);
    const ownRes = headerSecrets(rec.responseHeaders);
    const secrets = own.length + ownRes.length === 0 ? storedSecrets : withMoreSecrets(storedSecrets, [...own, ...ownRes]);
    // A body stored whole and unmasked needs no hash here (`get` derives it); a masked one keeps the hash of what was sent.
    // A content-encoded body is checked decoded too; one too large to check is not stored (null).
    const body = (b: Buffer | null | undefined, headers: ExchangeRecord['requestHeaders'] | null | undefined, complete: boolean, sha: string | null | undefined): [Buffer | null, string | null] => {
      if (!b) return [null, sha ?? null];
      const raw = Buffer.isBuffer(b) ? b : Buffer.from(b);
      const encoding = headers?.['content-encoding'];
      const stored = encoding === undefined ? maskBody(raw, secrets) : maskEncodedBody(raw, encoding, complete, secrets);
      return [stored, sha ?? (complete && stored !== raw ? createHash('sha256').update(raw).digest('hex') : null)];
    };
    const [reqBody, reqSha] = body(rec.requestBody, rec.requestHeaders, rec.requestBodyComplete !== false, rec.requestBodySha256);
    const [resBody, resSha] = body(rec.responseBody, rec.responseHeaders, rec.responseBodyComplete !== false, rec.responseBodySha256);
    return ['x', [
      parseExchangeId(rec.id),
      rec.sessionId ?? null,
      rec.agent,
      rec.startedAt,
      rec.endedAt ?? null,
      rec.method,
      rec.scheme,
      rec.host,
      rec.port,
      maskTextPre(maskQuery(rec.path), secrets),
      rec.kind,
      rec.verdict ?? null,
      rec.ruleId ?? null,
      rec.explanation ?? null,
      rec.status ?? null,
      rec.error == null ? null : maskTextPre(rec.error, secrets),
      rec.requestBytes ?? 0,
      rec.responseBytes ?? 0,
      numOrNull(t.connectMs),
      numOrNull(t.tlsMs),
      numOrNull(t.upstreamMs),
      numOrNull(t.totalMs),
      maskedHeadersJson(rec.requestHeaders ?? {}, secrets),
      rec.responseHeaders ? maskedHeadersJson(rec.responseHeaders, secrets) : null,
      rec.requestBodyComplete === false ? 0 : 1,
      rec.responseBodyComplete === false ? 0 : 1,
      reqSha,
      resSha,
      rec.reviewId ?? null,
      reqBody,
      resBody,
      null, // request_body_encoding: set when the body is compressed (startCompression)
      null,
    ]];
  }

  /**
   * Writes whose bodies are being compressed on the thread pool, with the bodies still to finish.
   * They join the queue when the last one is done, or at once, compressed here, when someone flushes.
   */
  const compressing = new Map<WireWrite, Set<number>>();

  function finishCompression(w: WireWrite, slot: number, gz: Buffer): void {
    const values = (w as ['x', unknown[]])[1];
    const [bodyAt, encAt] = BODY_SLOTS[slot]!;
    [values[bodyAt], values[encAt]] = compressed(values[bodyAt] as Buffer, gz);
  }

  /** Starts compressing the bodies worth it; false when there are none (the write is queued as it is). */
  function startCompression(w: WireWrite, rec: ExchangeRecord): boolean {
    const values = (w as ['x', unknown[]])[1];
    const req = worthCompressing(values[BODY_SLOTS[0][0]] as Buffer | null, rec.requestHeaders);
    const res = worthCompressing(values[BODY_SLOTS[1][0]] as Buffer | null, rec.responseHeaders);
    if (!req && !res) return false;
    const slots = new Set<number>(req && res ? [0, 1] : [req ? 0 : 1]);
    compressing.set(w, slots);
    for (const slot of slots) {
      gzip(values[BODY_SLOTS[slot]![0]] as Buffer, (err, gz) => {
        const left = compressing.get(w);
        if (!left?.has(slot)) return; // finished by a flush meanwhile
        left.delete(slot);
        if (!err) finishCompression(w, slot, gz);
        if (left.size === 0) {
          compressing.delete(w);
          if (!closed) {
            countBodies(w);
            enqueue(w);
          }
        }
      });
    }
    return true;
  }

  /** Finishes every compression still running, here and now, and queues those writes. */
  function drainCompressions(): void {
    for (const [w, slots] of compressing) {
      for (const slot of slots) {
        const values = (w as ['x', unknown[]])[1];
        finishCompression(w, slot, gzipSync(values[BODY_SLOTS[slot]![0]] as Buffer));
      }
      sealer.wrote((w as ['x', unknown[]])[1]);
      queue.push(w);
      countBodies(w);
    }
    compressing.clear();
  }

  function clearTimers(): void {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (immediate) {
      clearImmediate(immediate);
      immediate = null;
    }
  }

  /** Hands the queue to the worker without waiting. */
  function post(now = false): void {
    clearTimers();
    if (failing && !closed) {
      // Behind the held writes, in order: they are all written again together.
      for (const w of queue) hold(w);
      queue = [];
      return;
    }
    if (queue.length === 0) {
      if (now) worker.post([], true);
      return;
    }
    const batch = queue;
    queue = [];
    worker.post(batch, now);
  }

  /** Everything recorded so far is committed when this returns. */
  function flush(): void {
    if (compressing.size > 0) drainCompressions();
    post(true);
    worker.waitIdle();
  }

  function assertOpen(): void {
    if (closed) throw new AirlockError('unavailable', 'The store is closed.');
  }

  function enqueue(w: WireWrite): void {
    if (w[0] === 'x') sealer.wrote(w[1]);
    queue.push(w);
    if (queue.length >= maxQueued) {
      post();
    } else if (queue.length >= FLUSH_ROWS) {
      if (!immediate) {
        immediate = setImmediate(() => {
          immediate = null;
          post();
        });
      }
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        post();
      }, handOffMs);
      timer.unref();
    }
  }

  const exchanges: ExchangesRepo = {
    nextId() {
      if (nextId >= idLimit) {
        try {
          idLimit = worker.reserveIds(ID_BLOCK);
        } catch (e) {
          const code = String((e as { code?: string }).code ?? '');
          if (refusesAllWrites(code)) startFailing((e as Error).message, code);
          throw new AirlockError('unavailable', `Cannot reserve exchange ids: ${(e as Error).message}.`);
        }
        nextId = idLimit - ID_BLOCK;
      } else if (idLimit - nextId === ID_BLOCK / 2) worker.reserveIdsAhead(ID_BLOCK);
      sealer.issued(nextId);
      return String(nextId++);
    },
    record(rec) {
      assertOpen();
      sealer.recorded(Number(rec.id));
      sealer.start();
      let w: WireWrite;
      try {
        w = toWire(rec);
      } catch (err) {
        opts.onError(err);
        return null;
      }
      if (!startCompression(w, rec)) {
        countBodies(w);
        enqueue(w);
      }
      const values = w[1] as unknown[];
      return { path: values[PATH_SLOT] as string, error: values[ERROR_SLOT] as string | null };
    },
    flush,
    list(q = {}) {
      const keys = FILTER_KEYS.filter((k) => q[k] !== undefined && q[k] !== null && q[k] !== '');
      const params: unknown[] = keys.map((k) => q[k]);
      const cursor = q.before !== undefined && q.before !== null && q.before !== '';
      if (cursor) params.push(parseExchangeId(q.before!, 'cursor'));
      const limit = clampLimit(q.limit);
      params.push(limit);
      flush();
      const rows = listStatement(keys, cursor).all(...params);
      if (!failing) return rows.map(rowToView);
      const extra = heldRows();
      const before = cursor ? parseExchangeId(q.before!, 'cursor') : Infinity;
      const merged = new Map<number, ExchangeRow>(rows.map((r) => [r.id, r]));
      for (const [id, r] of extra) {
        if (id < before && keys.every((k) => (r as unknown as Record<string, unknown>)[FILTER_COLUMNS[k]] === q[k])) merged.set(id, r);
      }
      return [...merged.values()].sort((x, y) => y.id - x.id).slice(0, limit).map(rowToView);
    },
    get(id) {
      if (!/^[0-9]+$/.test(id)) return null;
      flush();
      const r = (failing ? heldRows().get(Number(id)) : undefined) ?? getExchange.get(Number(id));
      return r ? rowToRecord(r) : null;
    },
    *iterate(q = {}) {
      flush();
      for (const r of exportRows(VIEW_COLUMNS, q)) yield rowToView(r);
    },
    *records(q = {}) {
      flush();
      for (const r of exportRows('*', q)) yield rowToRecord(r);
    },
    count() {
      flush();
      const n = countStmt.get()!.n;
      if (!failing) return n;
      let extra = 0;
      for (const id of heldRows().keys()) if (!existsStmt.get(id)) extra++;
      return n + extra;
    },
    seal() {
      assertOpen();
      sealer.sealNow();
    },
    prune(olderThanDays, at) {
      if (typeof olderThanDays !== 'number' || !Number.isFinite(olderThanDays) || olderThanDays < 0) {
        throw new AirlockError('bad-request', 'Retention must be a non-negative number of days.');
      }
      flush();
      const cutoff = new Date((at ?? opts.now()).getTime() - olderThanDays * 86_400_000).toISOString();
      // Only sealed rows go, and only whole seals (verify then knows which seals were pruned): what is
      // written is sealed first, and the rows up to the end of the last seal before the cutoff are deleted.
      let throughId = 0;
      if (oldestStmt.get({ cutoff }) !== undefined) {
        sealer.sealNow();
        const b = pruneBoundary(db, firstKeptStmt.get({ cutoff })?.id ?? Number.MAX_SAFE_INTEGER);
        if (b.refused !== null) {
          // Rows changed outside Airlock: deleting them would delete the evidence. Kept, and said.
          audit.append({ actor: 'system', action: 'retention.refused', subject: 'exchanges', details: { olderThanDays, cutoff, reason: b.refused } });
          opts.onError(new Error(`retention: ${b.refused}`));
          return 0;
        }
        throughId = b.through;
      }
      const pruned = db.transaction(() => {
        const count = throughId > 0 ? pruneStmt.run(throughId).changes : 0; // bodies are in the row
        if (throughId > 0) sealer.pruned(throughId);
        const details = { count, olderThanDays, cutoff, ...(throughId > 0 ? { throughId } : {}) };
        audit.append({ actor: 'system', action: 'retention.pruned', subject: 'exchanges', details });
        return count;
      }).immediate();
      if (pruned > 0 && bodyLimit !== null) bodyBytes = sumBodies.get()!.n;
      return pruned;
    },
    limitBodies(maxBytes) {
      if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new AirlockError('bad-request', 'The body budget must be a whole number of bytes (0 or more).');
      flush();
      bodyLimit = maxBytes;
      bodyBytes = sumBodies.get()!.n;
      if (bodyBytes > bodyLimit && !bodyPruning) bodyPruning = pruneBodies().finally(() => { bodyPruning = null; });
    },
    storedBodyBytes() {
      flush();
      return bodyLimit === null ? null : bodyBytes;
    },
    async bodiesPruned() {
      while (bodyPruning) await bodyPruning;
    },
    health,
  };

  const listSessionsFirst = db.prepare<[string | null, string | null, number], SessionRow>(
    'SELECT * FROM sessions WHERE (? IS NULL OR agent = ?) ORDER BY started_at DESC, id DESC LIMIT ?',
  );
  const listSessionsAfter = db.prepare<[string | null, string | null, string, string, string, number], SessionRow>(
    `SELECT * FROM sessions WHERE (? IS NULL OR agent = ?) AND (started_at < ? OR (started_at = ? AND id < ?))
      ORDER BY started_at DESC, id DESC LIMIT ?`,
  );
  const countSessionExchanges = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM exchanges WHERE session_id = ?');

  const sessions: SessionsRepo = {
    start(s) {
      assertOpen();
      enqueue(['ss', s.id, s.agent, s.clientAddress, s.startedAt, s.token ?? null, s.via ?? null]);
    },
    end(id, endedAt) {
      assertOpen();
      enqueue(['se', endedAt, id]);
    },
    get(id): SessionRecord | null {
      flush();
      const r = getSession.get(id);
      return r ? sessionRecord(r) : null;
    },
    list(q = {}) {
      flush();
      const limit = clampLimit(q.limit);
      const agent = q.agent ? q.agent : null;
      let rows: SessionRow[];
      if (q.before) {
        const c = getSession.get(q.before);
        if (!c) throw new AirlockError('not-found', `No session ${q.before} (the cursor of the previous page).`);
        rows = listSessionsAfter.all(agent, agent, c.started_at, c.started_at, c.id, limit);
      } else rows = listSessionsFirst.all(agent, agent, limit);
      return rows.map((r) => ({
        id: r.id,
        agent: r.agent,
        clientAddress: r.client_address,
        startedAt: r.started_at,
        endedAt: r.ended_at,
        token: r.token,
        via: r.via,
        exchangeCount: countSessionExchanges.get(r.id)!.n,
      }));
    },
  };

  return {
    exchanges,
    sessions,
    setSecrets(values) {
      storedSecrets = opts.normalizeSecrets(values);
    },
    close() {
      if (closed) return;
      if (retryTimer) {
        clearTimeout(retryTimer);
        retryTimer = null;
      }
      try {
        if (failing) retryHeld(); // one last try for what is held
        if (retryTimer) {
          clearTimeout(retryTimer); // set again by a try that failed
          retryTimer = null;
        }
        // Bodies still compressing on the thread pool are finished here: their callbacks would come
        // after `closed` is set and drop the writes.
        if (compressing.size > 0) drainCompressions();
        post();
        if (failing) {
          opts.onError(new Error(`store: ${held.length} recorded writes could not be saved at shutdown: ${failing.error}`));
          held = [];
        } else if (sealer.active()) {
          // What this gateway recorded is sealed before it stops (seals.ts).
          try {
            sealer.sealNow();
          } catch (e) {
            opts.onError(e);
          }
        }
      } finally {
        sealer.stop();
        closed = true;
        worker.close();
        if (checkpointer) {
          (checkpointer as WalCheckpointer).close();
          // Leave a short WAL behind: the checkpoint thread's connection may still be open, so
          // closing this one is not guaranteed to be the last close that checkpoints by itself.
          try {
            db.pragma('wal_checkpoint(TRUNCATE)');
          } catch {
            // busy (another process reading): the next open recovers the WAL as usual
          }
        }
      }
    },
  };
}
