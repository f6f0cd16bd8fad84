// Exchanges and sessions: recorded through a write queue that is flushed in batches (one transaction per batch).
import type Database from 'better-sqlite3';
import type { ExchangeView } from '../contract/views';
import { AirlockError } from '../contract/errors';
import { maskBody, maskHeaders, maskTextPre } from './mask';
import { InlineWriter, WriteWorker, type BatchWriter, type WireWrite, type WriteWorkerSql } from './write-worker';
import type { AuditLog, ExchangeRecord, ExchangesRepo, HeaderMap, SessionRecord, SessionsRepo } from './types';

export const FLUSH_INTERVAL_MS = 50;
export const FLUSH_ROWS = 200;
/** Beyond this many queued writes, record() flushes synchronously (bounds memory if the event loop never idles). */
export const MAX_QUEUED = 10_000;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

type QueuedWrite =
  | { t: 'exchange'; rec: ExchangeRecord }
  | { t: 'session-start'; s: { id: string; agent: string; clientAddress: string; startedAt: string } }
  | { t: 'session-end'; id: string; endedAt: string };

interface ExchangeRow {
  id: string;
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
}

const EXCHANGE_COLUMNS = [
  'id', 'session_id', 'agent', 'started_at', 'ended_at', 'method', 'scheme', 'host', 'port', 'path', 'kind',
  'verdict', 'rule_id', 'explanation', 'status', 'error', 'request_bytes', 'response_bytes', 'connect_ms', 'tls_ms',
  'upstream_ms', 'total_ms', 'request_headers', 'response_headers', 'request_body_complete', 'response_body_complete',
  'request_body_sha256', 'response_body_sha256', 'review_id',
] as const;

const VIEW_COLUMNS =
  'id, session_id, agent, started_at, ended_at, method, scheme, host, port, path, kind, verdict, rule_id, explanation, ' +
  'status, error, request_bytes, response_bytes, upstream_ms, total_ms, review_id';

function rowToView(r: ExchangeRow): ExchangeView {
  return {
    id: r.id,
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

function numOrNull(n: number | null | undefined): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
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
  opts: { now: () => Date; onError: (err: unknown) => void; normalizeSecrets: (s: string[]) => string[]; maxQueued?: number; writer?: 'worker' | 'inline' },
): WriteQueue {
  let secrets: string[] = [];
  let queue: QueuedWrite[] = [];
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  let closed = false;
  const maxQueued = Math.max(FLUSH_ROWS, opts.maxQueued ?? MAX_QUEUED);

  const sql: WriteWorkerSql = {
    upsertExchange: `INSERT INTO exchanges (${EXCHANGE_COLUMNS.join(', ')}) VALUES (${EXCHANGE_COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT(id) DO UPDATE SET ${EXCHANGE_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')}`,
    upsertBody: `INSERT INTO exchange_bodies (exchange_id, direction, body) VALUES (?, ?, ?)
     ON CONFLICT(exchange_id, direction) DO UPDATE SET body = excluded.body`,
    deleteBody: 'DELETE FROM exchange_bodies WHERE exchange_id = ? AND direction = ?',
    insertSession: `INSERT INTO sessions (id, agent, client_address, started_at) VALUES (?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET agent = excluded.agent, client_address = excluded.client_address, started_at = excluded.started_at`,
    endSession: 'UPDATE sessions SET ended_at = ? WHERE id = ?',
  };
  // Inserts run inline (default) or, with writer 'worker', on a worker thread with its own connection
  // so the proxy's event loop never waits on SQLite or a checkpoint (one more isolate: more memory).
  const worker: BatchWriter = opts.writer === 'worker' ? new WriteWorker(db.name, sql, opts.onError) : new InlineWriter(db, sql, opts.onError);
  const getSession = db.prepare<[string], { id: string; agent: string; client_address: string; started_at: string; ended_at: string | null }>(
    'SELECT * FROM sessions WHERE id = ?',
  );
  const getExchange = db.prepare<[string], ExchangeRow>('SELECT * FROM exchanges WHERE id = ?');
  const getBodies = db.prepare<[string], { direction: 'request' | 'response'; body: Buffer }>(
    'SELECT direction, body FROM exchange_bodies WHERE exchange_id = ?',
  );
  const listFirst = db.prepare<[number], ExchangeRow>(
    `SELECT ${VIEW_COLUMNS} FROM exchanges ORDER BY started_at DESC, id DESC LIMIT ?`,
  );
  const cursorStmt = db.prepare<[string], { started_at: string }>('SELECT started_at FROM exchanges WHERE id = ?');
  const listAfterRow = db.prepare<[string, string, string, number], ExchangeRow>(
    `SELECT ${VIEW_COLUMNS} FROM exchanges
      WHERE started_at < ? OR (started_at = ? AND id < ?)
      ORDER BY started_at DESC, id DESC LIMIT ?`,
  );
  const listBeforeId = db.prepare<[string, number], ExchangeRow>(
    `SELECT ${VIEW_COLUMNS} FROM exchanges WHERE id < ? ORDER BY started_at DESC, id DESC LIMIT ?`,
  );
  const countStmt = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM exchanges');
  const pruneStmt = db.prepare('DELETE FROM exchanges WHERE started_at < ?');

  /** Ids recorded by this process recently: only a second recording may need to delete a body. */
  const recordedIds = new Set<string>();
  /** Masks and serialises one queued write for the worker (main thread, once per batch). */
  function toWire(w: QueuedWrite): WireWrite {
    if (w.t === 'session-start') return ['ss', w.s.id, w.s.agent, w.s.clientAddress, w.s.startedAt];
    if (w.t === 'session-end') return ['se', w.endedAt, w.id];
    const rec = w.rec;
    const t = rec.timings ?? { connectMs: null, tlsMs: null, upstreamMs: null, totalMs: null };
    const values = [
      rec.id,
      rec.sessionId ?? null,
      rec.agent,
      rec.startedAt,
      rec.endedAt ?? null,
      rec.method,
      rec.scheme,
      rec.host,
      rec.port,
      maskTextPre(rec.path, secrets),
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
      JSON.stringify(maskHeaders(rec.requestHeaders ?? {}, secrets)),
      rec.responseHeaders ? JSON.stringify(maskHeaders(rec.responseHeaders, secrets)) : null,
      rec.requestBodyComplete === false ? 0 : 1,
      rec.responseBodyComplete === false ? 0 : 1,
      rec.requestBodySha256 ?? null,
      rec.responseBodySha256 ?? null,
      rec.reviewId ?? null,
    ];
    const body = (b: Buffer | null | undefined) => (b ? maskBody(Buffer.isBuffer(b) ? b : Buffer.from(b), secrets) : null);
    const again = recordedIds.has(rec.id);
    recordedIds.add(rec.id);
    if (recordedIds.size > 4096) recordedIds.clear();
    return ['x', values, body(rec.requestBody), body(rec.responseBody), again];
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
  function post(): void {
    clearTimers();
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    const wire: WireWrite[] = [];
    for (const w of batch) {
      try {
        wire.push(toWire(w));
      } catch (err) {
        opts.onError(err);
      }
    }
    worker.post(wire);
  }

  /** Everything recorded so far is committed when this returns. */
  function flush(): void {
    post();
    worker.waitIdle();
  }

  function enqueue(w: QueuedWrite): void {
    if (closed) throw new AirlockError('unavailable', 'The store is closed.');
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
      }, FLUSH_INTERVAL_MS);
      timer.unref();
    }
  }

  const exchanges: ExchangesRepo = {
    record(rec) {
      enqueue({ t: 'exchange', rec: { ...rec } });
    },
    flush,
    list(q) {
      flush();
      const limit = Math.max(1, Math.min(MAX_LIST_LIMIT, Math.floor(q?.limit ?? DEFAULT_LIST_LIMIT) || DEFAULT_LIST_LIMIT));
      if (q?.before === undefined || q.before === null || q.before === '') return listFirst.all(limit).map(rowToView);
      const cursor = cursorStmt.get(q.before);
      const rows = cursor
        ? listAfterRow.all(cursor.started_at, cursor.started_at, q.before, limit)
        : listBeforeId.all(q.before, limit); // cursor row gone (pruned): fall back to the contract's "id lower than"
      return rows.map(rowToView);
    },
    get(id) {
      flush();
      const r = getExchange.get(id);
      if (!r) return null;
      const bodies = getBodies.all(id);
      const body = (d: 'request' | 'response') => bodies.find((b) => b.direction === d)?.body ?? null;
      return {
        id: r.id,
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
        requestBody: body('request'),
        responseBody: body('response'),
        requestBodyComplete: r.request_body_complete !== 0,
        responseBodyComplete: r.response_body_complete !== 0,
        requestBodySha256: r.request_body_sha256,
        responseBodySha256: r.response_body_sha256,
        reviewId: r.review_id,
      };
    },
    count() {
      flush();
      return countStmt.get()!.n;
    },
    prune(olderThanDays, at) {
      if (typeof olderThanDays !== 'number' || !Number.isFinite(olderThanDays) || olderThanDays < 0) {
        throw new AirlockError('bad-request', 'Retention must be a non-negative number of days.');
      }
      flush();
      const cutoff = new Date((at ?? opts.now()).getTime() - olderThanDays * 86_400_000).toISOString();
      return db.transaction(() => {
        const count = pruneStmt.run(cutoff).changes; // bodies go with ON DELETE CASCADE
        audit.append({ actor: 'system', action: 'retention.pruned', subject: 'exchanges', details: { count, olderThanDays, cutoff } });
        return count;
      }).immediate();
    },
  };

  const sessions: SessionsRepo = {
    start(s) {
      enqueue({ t: 'session-start', s: { id: s.id, agent: s.agent, clientAddress: s.clientAddress, startedAt: s.startedAt } });
    },
    end(id, endedAt) {
      enqueue({ t: 'session-end', id, endedAt });
    },
    get(id): SessionRecord | null {
      flush();
      const r = getSession.get(id);
      return r ? { id: r.id, agent: r.agent, clientAddress: r.client_address, startedAt: r.started_at, endedAt: r.ended_at } : null;
    },
  };

  return {
    exchanges,
    sessions,
    setSecrets(values) {
      secrets = opts.normalizeSecrets(values);
    },
    close() {
      if (closed) return;
      try {
        post();
      } finally {
        closed = true;
        worker.close();
      }
    },
  };
}
