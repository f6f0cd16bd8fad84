// Held requests awaiting (or past) a human decision, with their history in review_events.
import type Database from 'better-sqlite3';
import { maskDeep, maskTextPre } from './mask';
import { AirlockError } from '../contract/errors';
import type { AuditLog, ReviewEvent, ReviewPatch, ReviewRecord, ReviewsRepo, ReviewStateName } from './types';

const STATES: readonly ReviewStateName[] = ['pending', 'approved', 'denied', 'expired', 'interrupted'];

/** A `reviews` row as SQLite returns it. */
export interface ReviewRow {
  id: string;
  exchange_id: string;
  agent: string;
  kind: string;
  host: string;
  repo: string;
  state: ReviewStateName;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
  body_sha256: string;
  body_bytes: number;
  body_path: string | null;
  summary: string;
  detail_json: string;
  upstream_status: number | null;
  upstream_result: string | null;
}

function rowToReview(r: ReviewRow): ReviewRecord {
  return {
    id: r.id,
    exchangeId: r.exchange_id,
    agent: r.agent,
    kind: r.kind,
    host: r.host,
    repo: r.repo,
    state: r.state,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decidedAt: r.decided_at,
    decidedBy: r.decided_by,
    reason: r.reason,
    bodySha256: r.body_sha256,
    bodyBytes: r.body_bytes,
    bodyPath: r.body_path,
    summary: r.summary,
    detail: JSON.parse(r.detail_json) as unknown,
    upstreamStatus: r.upstream_status,
    upstreamResult: r.upstream_result ?? null,
  };
}

export const INTERRUPTED_REASON = 'Airlock stopped before this review was decided; the agent must push again.';

/** Added to a review whose diff or summary held a stored credential (masked in what is kept and shown). */
export const STORED_CREDENTIAL_FINDING = {
  severity: 'critical',
  rule: 'stored-credential',
  message: 'This push contains a credential that Airlock stores for one of your hosts (masked in this review). Approving it would publish that credential.',
  path: null,
  line: null,
} as const;

export function createReviewsRepo(db: Database.Database, audit: AuditLog, now: () => Date, secrets: () => readonly string[] = () => []): ReviewsRepo {
  const insertStmt = db.prepare(
    `INSERT INTO reviews (id, exchange_id, agent, kind, host, repo, state, created_at, expires_at, decided_at, decided_by,
       reason, body_sha256, body_bytes, body_path, summary, detail_json, upstream_status)
     VALUES (@id, @exchange_id, @agent, @kind, @host, @repo, @state, @created_at, @expires_at, @decided_at, @decided_by,
       @reason, @body_sha256, @body_bytes, @body_path, @summary, @detail_json, @upstream_status)`,
  );
  const getStmt = db.prepare<[string], ReviewRow>('SELECT * FROM reviews WHERE id = ?');
  const listAll = db.prepare<[], ReviewRow>('SELECT * FROM reviews ORDER BY created_at DESC, id DESC');
  const listByState = db.prepare<[string], ReviewRow>('SELECT * FROM reviews WHERE state = ? ORDER BY created_at DESC, id DESC');
  const pendingStmt = db.prepare<[], ReviewRow>("SELECT * FROM reviews WHERE state = 'pending' ORDER BY created_at, id");
  const eventStmt = db.prepare('INSERT INTO review_events (review_id, state, at, actor, reason) VALUES (?, ?, ?, ?, ?)');
  const eventsStmt = db.prepare<[string], { id: number; review_id: string; state: ReviewStateName; at: string; actor: string; reason: string | null }>(
    'SELECT * FROM review_events WHERE review_id = ? ORDER BY id',
  );

  const insertTx = db.transaction((given: ReviewRecord) => {
    const r = masked(given);
    insertStmt.run({
      id: r.id,
      exchange_id: r.exchangeId,
      agent: r.agent,
      kind: r.kind,
      host: r.host,
      repo: r.repo,
      state: r.state,
      created_at: r.createdAt,
      expires_at: r.expiresAt,
      decided_at: r.decidedAt ?? null,
      decided_by: r.decidedBy ?? null,
      reason: r.reason ?? null,
      body_sha256: r.bodySha256,
      body_bytes: r.bodyBytes,
      body_path: r.bodyPath ?? null,
      summary: r.summary,
      detail_json: JSON.stringify(r.detail ?? null),
      upstream_status: r.upstreamStatus ?? null,
    });
    eventStmt.run(r.id, r.state, r.createdAt, 'system', null);
  });
  /** The review as kept: a stored credential in its summary or detail (an agent committed it) masked, and said so. */
  function masked(r: ReviewRecord): ReviewRecord {
    const list = secrets();
    const summary = maskTextPre(r.summary, list);
    const detail = maskDeep(r.detail ?? null, list);
    if (summary === r.summary && !detail.changed) return r;
    const d = detail.value as { findings?: unknown[] } | null;
    if (d && typeof d === 'object' && Array.isArray(d.findings)) d.findings = [STORED_CREDENTIAL_FINDING, ...d.findings];
    return { ...r, summary, detail: d };
  }

  const insertWithEventTx = db.transaction((r: ReviewRecord, event: Parameters<AuditLog['append']>[0]) => {
    insertTx(r);
    audit.append(event);
  });

  const COLUMN: Record<keyof ReviewPatch, string> = {
    state: 'state',
    decidedAt: 'decided_at',
    decidedBy: 'decided_by',
    reason: 'reason',
    upstreamStatus: 'upstream_status',
    upstreamResult: 'upstream_result',
  };
  const updateStmts = new Map<string, Database.Statement>();

  const updateTx = db.transaction((id: string, patch: ReviewPatch): ReviewRecord => {
    const current = getStmt.get(id);
    if (!current) throw new AirlockError('not-found', `There is no review ${id}.`);
    const keys = (Object.keys(COLUMN) as (keyof ReviewPatch)[]).filter((k) => patch[k] !== undefined);
    if (keys.length === 0) return rowToReview(current);
    const sql = `UPDATE reviews SET ${keys.map((k) => `${COLUMN[k]} = ?`).join(', ')} WHERE id = ?`;
    let stmt = updateStmts.get(sql);
    if (!stmt) updateStmts.set(sql, (stmt = db.prepare(sql)));
    stmt.run(...keys.map((k) => patch[k] ?? null), id);
    const next = rowToReview(getStmt.get(id)!);
    eventStmt.run(id, next.state, patch.decidedAt ?? now().toISOString(), patch.decidedBy ?? 'system', patch.reason ?? null);
    return next;
  });

  /** A change and its audit event in one transaction: both are in the record, or neither. */
  const updateWithEventTx = db.transaction((id: string, patch: ReviewPatch, event: Parameters<AuditLog['append']>[0]) => {
    updateTx(id, patch);
    audit.append(event);
  });

  const markTx = db.transaction((at: Date): ReviewRecord[] => {
    const iso = at.toISOString();
    const out: ReviewRecord[] = [];
    for (const row of pendingStmt.all()) {
      const r = updateTx(row.id, { state: 'interrupted', decidedAt: iso, decidedBy: 'system', reason: INTERRUPTED_REASON });
      audit.append({
        actor: 'system',
        action: 'review.interrupted',
        subject: r.id,
        details: { exchangeId: r.exchangeId, agent: r.agent, host: r.host, repo: r.repo, bodySha256: r.bodySha256, createdAt: r.createdAt },
      });
      out.push(r);
    }
    return out;
  });

  return {
    insert(r, event) {
      if (!STATES.includes(r.state)) throw new AirlockError('bad-request', `Unknown review state ${JSON.stringify(r.state)}.`);
      try {
        if (event) insertWithEventTx.immediate(r, event);
        else insertTx.immediate(r);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new AirlockError('conflict', `A review with id ${r.id} already exists.`);
        }
        throw err;
      }
    },
    update(id, patch, event) {
      if (patch.state !== undefined && !STATES.includes(patch.state)) {
        throw new AirlockError('bad-request', `Unknown review state ${JSON.stringify(patch.state)}.`);
      }
      if (!event) updateTx.immediate(id, patch);
      else updateWithEventTx.immediate(id, patch, event);
    },
    get(id) {
      const r = getStmt.get(id);
      return r ? rowToReview(r) : null;
    },
    list(q) {
      const rows = q?.state ? listByState.all(q.state) : listAll.all();
      return rows.map(rowToReview);
    },
    events(id): ReviewEvent[] {
      return eventsStmt.all(id).map((e) => ({ id: e.id, reviewId: e.review_id, state: e.state, at: e.at, actor: e.actor, reason: e.reason }));
    },
    markInterrupted(at) {
      return markTx.immediate(at ?? now());
    },
  };
}
