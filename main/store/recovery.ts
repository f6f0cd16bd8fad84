// What a gateway that stopped without closing the record left behind, put right at the next start,
// with one audit event that says what was found. A gateway killed (SIGKILL, a crash, power loss)
// loses the exchanges still in its write batch (at most ~100 ms of traffic, FLUSH_INTERVAL_MS) and
// those in flight; the record cannot get them back, but it must not pretend nothing happened.
import type { SqliteDatabase } from './sqlite';
import type { AuditLog } from './types';
import { FLUSH_INTERVAL_MS } from './exchanges';
import type { ReviewRow } from './reviews';

export interface RecoveryInput {
  /** The runtime file the previous gateway left (it removes it when it stops cleanly), if any. */
  previous: { pid: number; startedAt: string | null } | null;
  /** Spool files (pushes being read or analysed) the previous gateway left, already removed. */
  spool: { files: number; bytes: number };
}

export interface RecoveryReport {
  /** The previous gateway did not stop cleanly (its runtime file was left). */
  uncleanStop: boolean;
  /** Sessions the previous gateway never ended, now ended at their last recorded exchange. */
  sessionsEnded: number;
  /** Held pushes whose review was recorded but whose exchange was not: a row is restored from the review. */
  exchangesRestored: string[];
  /** Approved pushes whose forwarding began but whose upstream answer was never recorded. */
  forwardUnknown: string[];
  /** The last exchange in the record; exchanges after it may have been lost with the process. */
  lastExchange: { id: number; at: string } | null;
  /** Whether anything was found (then an audit event `record.repaired` says what). */
  repaired: boolean;
}

export const RESTORED_EXCHANGE_ERROR =
  'Airlock stopped before this exchange was recorded; this row was restored from its review at the next start (headers, timings and the answer are unknown)';
/** The review's `upstreamResult` for such a push (the console and `airlock show` print it). */
export const FORWARD_UNKNOWN_RESULT = 'not known: Airlock stopped while forwarding this push; check the branch upstream';
export const FORWARD_UNKNOWN_REASON =
  'Airlock stopped after this push was approved and while it was being forwarded: whether upstream took it is not recorded; check the branch upstream';

/** `host`, `host:port` or `[v6]:port` (an exchange's authority) → host and port (443 when absent). */
function splitAuthority(authority: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority, port: 443 };
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 443 };
}

/**
 * Runs at start, before the gateway listens (one gateway per data dir: nothing else writes exchanges
 * then), in one transaction with its audit event. Idempotent: a second run finds nothing.
 */
export function recoverRecord(db: SqliteDatabase, audit: AuditLog, input: RecoveryInput): RecoveryReport {
  const sessionsStmt = db.prepare(
    `UPDATE sessions SET ended_at = coalesce(
       (SELECT max(coalesce(e.ended_at, e.started_at)) FROM exchanges e WHERE e.session_id = sessions.id), started_at)
     WHERE ended_at IS NULL`,
  );
  const orphanStmt = db.prepare<[], ReviewRow>(
    `SELECT r.* FROM reviews r WHERE NOT EXISTS (SELECT 1 FROM exchanges e WHERE e.id = r.exchange_id) ORDER BY r.created_at`,
  );
  const restoreStmt = db.prepare(
    `INSERT INTO exchanges (id, session_id, agent, started_at, ended_at, method, scheme, host, port, path, kind, verdict, rule_id,
       explanation, status, error, request_bytes, response_bytes, request_headers, request_body_complete, response_body_complete,
       request_body_sha256, review_id)
     VALUES (?, NULL, ?, ?, NULL, 'POST', ?, ?, ?, ?, ?, 'review', 'builtin:hold-git-push', 'every git push is held until a reviewer approves it',
       NULL, ?, ?, 0, '{}', 1, 0, ?, ?)`,
  );
  const unknownStmt = db.prepare<[], ReviewRow>(
    `SELECT * FROM reviews WHERE state = 'approved' AND upstream_status IS NULL AND upstream_result IS NULL ORDER BY created_at`,
  );
  const markUnknownStmt = db.prepare<[string, string]>('UPDATE reviews SET upstream_result = ? WHERE id = ?');
  const lastStmt = db.prepare<[], { id: number; at: string }>(
    'SELECT id, coalesce(ended_at, started_at) AS at FROM exchanges ORDER BY id DESC LIMIT 1',
  );

  const tx = db.transaction((): RecoveryReport => {
    const sessionsEnded = sessionsStmt.run().changes;
    const exchangesRestored: string[] = [];
    for (const r of orphanStmt.all()) {
      if (!/^\d+$/.test(r.exchange_id)) continue; // ids of the first schema (before integer ids): nothing to restore to
      const { host, port } = splitAuthority(r.host);
      const path = `/${r.repo.replace(/^\/+/, '')}/git-receive-pack`;
      restoreStmt.run(Number(r.exchange_id), r.agent, r.created_at, port === 80 ? 'http' : 'https', host, port, path, r.kind,
        RESTORED_EXCHANGE_ERROR, r.body_bytes, r.body_sha256, r.id);
      exchangesRestored.push(r.exchange_id);
    }
    const forwardUnknown: string[] = [];
    for (const r of unknownStmt.all()) {
      markUnknownStmt.run(FORWARD_UNKNOWN_RESULT, r.id);
      audit.append({
        actor: 'system',
        action: 'review.forward-unknown',
        subject: r.id,
        details: { exchangeId: r.exchange_id, agent: r.agent, host: r.host, repo: r.repo, bodySha256: r.body_sha256, reason: FORWARD_UNKNOWN_REASON },
      });
      forwardUnknown.push(r.id);
    }
    const last = lastStmt.get() ?? null;
    const uncleanStop = input.previous !== null;
    const repaired = uncleanStop || sessionsEnded > 0 || exchangesRestored.length > 0 || forwardUnknown.length > 0 || input.spool.files > 0;
    if (repaired) {
      audit.append({
        actor: 'system',
        action: 'record.repaired',
        subject: input.previous ? `pid ${input.previous.pid}` : 'record',
        details: {
          uncleanStop,
          previousGateway: input.previous,
          lastExchange: last,
          mayBeMissing: uncleanStop
            ? `exchanges that ended in the last ${FLUSH_INTERVAL_MS} ms before the stop (the write batch), and those still in flight, may be missing after exchange ${last?.id ?? 0}`
            : null,
          sessionsEnded,
          exchangesRestored,
          forwardUnknown,
          spoolFilesRemoved: input.spool.files,
          spoolBytesRemoved: input.spool.bytes,
        },
      });
    }
    return { uncleanStop, sessionsEnded, exchangesRestored, forwardUnknown, lastExchange: last, repaired };
  });
  return tx.immediate();
}
