// Held requests awaiting (or past) a human decision, with their history in review_events; and the check
// of every review row against its events in the audit chain (`reviewChainChecker`, run by the audit log's verify).
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { canonicalJson } from './canonical-json';
import { MASK, maskDeep, maskTextPre } from './mask';
import { AirlockError } from '../contract/errors';
import { FORWARD_UNKNOWN_RESULT } from './recovery';
import type { AuditEvent, AuditLog, ReviewEvent, ReviewPatch, ReviewRecord, ReviewsCheck, ReviewsRepo, ReviewStateName } from './types';

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

  /** Returns the review's summary and detail_json exactly as stored (what `shownSha256` is taken over). */
  const insertTx = db.transaction((given: ReviewRecord): { summary: string; detailJson: string } => {
    const r = masked(given);
    const detailJson = JSON.stringify(r.detail ?? null);
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
      detail_json: detailJson,
      upstream_status: r.upstreamStatus ?? null,
    });
    eventStmt.run(r.id, r.state, r.createdAt, 'system', null);
    return { summary: r.summary, detailJson };
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

  // The creation event carries the SHA-256 of what the reviewer is shown (summary and diff as stored,
  // after masking), so that `verify` finds a changed diff, finding or summary in the table.
  const insertWithEventTx = db.transaction((r: ReviewRecord, event: Parameters<AuditLog['append']>[0]) => {
    const stored = insertTx(r);
    const details = event.details === undefined || event.details === null ? {} : event.details;
    const shown = { shownSha256: reviewShownSha256(stored.summary, stored.detailJson) };
    audit.append({ ...event, details: typeof details === 'object' && !Array.isArray(details) ? { ...details, ...shown } : details });
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
        details: { exchangeId: r.exchangeId, agent: r.agent, host: r.host, repo: r.repo, bodySha256: r.bodySha256, createdAt: r.createdAt,
          reason: r.reason, decidedAt: r.decidedAt },
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

// ---------------------------------------------------------------- the reviews table against the chain

/**
 * SHA-256 (hex) of what a reviewer is shown, as the row stores it: the exact text of `summary` and of
 * `detail_json` (refs, diff, findings), encoded as canonicalJson({ detailJson, summary }). The stored text,
 * not a value parsed from it: recomputable from the row with no parsing and no JSON encoder in between, so
 * any changed byte shows, including an edit that parses to the same value for one reader and not another
 * (a key written twice: JSON.parse keeps the last, SQLite's json_extract the first).
 */
export function reviewShownSha256(summary: string, detailJson: string): string {
  return createHash('sha256').update(canonicalJson({ detailJson, summary }), 'utf8').digest('hex');
}

const DECISIONS = new Set(['review.approved', 'review.denied', 'review.expired', 'review.interrupted']);
const UPSTREAM = new Set(['review.forwarded', 'review.forward-unknown']);

interface ChainReview {
  created: AuditEvent | null;
  /** The last decision event (approved, denied, expired, interrupted). */
  decision: AuditEvent | null;
  /** The last review.forwarded or review.forward-unknown event. */
  upstream: AuditEvent | null;
}

type Details = Record<string, unknown>;
const detailsOf = (e: AuditEvent): Details =>
  e.details !== null && typeof e.details === 'object' && !Array.isArray(e.details) ? (e.details as Details) : {};

/**
 * Whether the table's text is the chain's. The chain's copy has every stored credential masked (audit
 * details and actors are masked on the way in) while the row may keep it (a denial reason is stored as
 * given): then each '[masked]' of the chain's text stands for some text of the row's, the rest must be equal.
 */
function sameText(table: unknown, chain: unknown): boolean {
  if (table === chain) return true;
  if (typeof table !== 'string' || typeof chain !== 'string' || !chain.includes(MASK)) return false;
  const parts = chain.split(MASK).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[^]+?')}$`).test(table);
}

/** A value in a message: none, a name or time as it is, free text (a reason, upstream's answer) quoted. */
function shown(v: unknown, text = false): string {
  const s = v === null || v === undefined ? 'none' : typeof v === 'string' && !text && /^[\w.:@/+-]+$/.test(v) ? v : JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** A `reviews` row, the columns the chain vouches for. */
interface CheckedRow {
  id: string;
  exchange_id: string;
  agent: string;
  host: string;
  repo: string;
  state: string;
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
  body_sha256: string;
  body_bytes: number;
  summary: string;
  detail_json: string;
  upstream_status: number | null;
  upstream_result: string | null;
}

/**
 * Collects the review events of a chain as verify reads it (`observe`, in seq order), then compares every
 * row of `reviews` with them (`check`, one pass over the table): a row exists iff its review.created does;
 * what the created event recorded (exchange, agent, host, repo, body SHA-256 and size, and the SHA-256 of
 * what the reviewer was shown) is the row's; the row's state, decided_by, reason and decided_at are the
 * last decision event's (none: pending, and no decider); upstream_status and upstream_result are the last
 * forwarded or forward-unknown event's. Events written before a field was in the chain skip that field,
 * and are counted (`withoutShown`, `withoutDecidedAt`).
 */
export function reviewChainChecker(db: Database.Database): { observe(e: AuditEvent): void; check(): ReviewsCheck } {
  const chain = new Map<string, ChainReview>();
  const problems: string[] = [];
  const entry = (id: string): ChainReview => {
    let c = chain.get(id);
    if (!c) chain.set(id, (c = { created: null, decision: null, upstream: null }));
    return c;
  };
  return {
    observe(e) {
      if (!e.action.startsWith('review.')) return;
      if (e.action === 'review.created') {
        const c = entry(e.subject);
        // One creation per id: an insert and its event are one transaction, and a second insert of an id fails.
        if (c.created) problems.push(`review ${e.subject}: created twice in the chain (seq ${c.created.seq} and ${e.seq})`);
        else c.created = e;
      } else if (DECISIONS.has(e.action)) entry(e.subject).decision = e;
      else if (UPSTREAM.has(e.action)) entry(e.subject).upstream = e;
    },
    check() {
      let checked = 0;
      let withoutShown = 0;
      let withoutDecidedAt = 0;
      const rows = db.prepare<[], CheckedRow>(
        `SELECT id, exchange_id, agent, host, repo, state, decided_at, decided_by, reason, body_sha256, body_bytes, summary,
           detail_json, upstream_status, upstream_result FROM reviews ORDER BY rowid`,
      );
      for (const row of rows.iterate()) {
        const id = String(row.id);
        const c = chain.get(id);
        const created = c?.created;
        if (!c || !created) {
          problems.push(`review ${id}: in the table, but the chain has no review.created for it (a row added outside Airlock)`);
          continue;
        }
        c.created = null; // seen: what is left at the end has no row
        checked++;
        /** `where`: the event the chain's value is from ("seq 17"), or why there is none. */
        const differs = (field: string, table: unknown, inChain: unknown, where: number | string): void => {
          const text = field === 'reason' || field === 'upstream_result';
          problems.push(`review ${id}: ${field} ${shown(table, text)} in the table, ${shown(inChain, text)} in the chain (${typeof where === 'number' ? `seq ${where}` : where})`);
        };

        // What the agent pushed, and what the reviewer was shown.
        const d = detailsOf(created);
        if ('exchangeId' in d && row.exchange_id !== d.exchangeId) differs('exchange_id', row.exchange_id, d.exchangeId, created.seq);
        if (!sameText(`agent:${row.agent}`, created.actor)) differs('agent', row.agent, created.actor.replace(/^agent:/, ''), created.seq);
        if (!sameText(row.host, d.host)) differs('host', row.host, d.host, created.seq);
        if (!sameText(row.repo, d.repo)) differs('repo', row.repo, d.repo, created.seq);
        if (!sameText(row.body_sha256, d.bodySha256)) differs('body_sha256', row.body_sha256, d.bodySha256, created.seq);
        if (row.body_bytes !== d.bodyBytes) differs('body_bytes', row.body_bytes, d.bodyBytes, created.seq);
        if (typeof d.shownSha256 === 'string') {
          const actual = typeof row.summary === 'string' && typeof row.detail_json === 'string' ? reviewShownSha256(row.summary, row.detail_json) : null;
          if (actual !== d.shownSha256) {
            problems.push(`review ${id}: summary or detail_json (the diff and findings shown to the reviewer) changed: ` +
              `their SHA-256 is ${shown(actual)} in the table, ${d.shownSha256} in the chain (seq ${created.seq})`);
          }
        } else withoutShown++;

        // The decision: the last one recorded (a review takes one), or none while pending.
        const dec = c.decision;
        if (!dec) {
          const since = `no decision event after review.created, seq ${created.seq}`;
          if (row.state !== 'pending') differs('state', row.state, 'pending', since);
          if (row.decided_by !== null) differs('decided_by', row.decided_by, null, since);
          if (row.decided_at !== null) differs('decided_at', row.decided_at, null, since);
          if (row.reason !== null) differs('reason', row.reason, null, since);
        } else {
          const dd = detailsOf(dec);
          const state = dec.action.slice('review.'.length);
          if (row.state !== state) differs('state', row.state, state, dec.seq);
          if (!sameText(row.decided_by, dec.actor)) differs('decided_by', row.decided_by, dec.actor, dec.seq);
          // An interruption at start wrote no reason in its event before decidedAt was added; it was always this one.
          const reason = 'reason' in dd ? dd.reason : dec.action === 'review.interrupted' ? INTERRUPTED_REASON : null;
          if (!sameText(row.reason, reason)) differs('reason', row.reason, reason, dec.seq);
          // decided_at is the deciding code's clock, the event's `at` the log's (later, and never behind the
          // previous event): not equal. The time stored is in the event's details since this check.
          if (typeof dd.decidedAt === 'string') {
            if (row.decided_at !== dd.decidedAt) differs('decided_at', row.decided_at, dd.decidedAt, dec.seq);
          } else withoutDecidedAt++;
        }

        // What upstream answered.
        const up = c.upstream;
        let status: unknown = null;
        let result: unknown = null;
        if (up?.action === 'review.forwarded') {
          const ud = detailsOf(up);
          status = ud.upstreamStatus ?? null;
          result = ud.result ?? null; // no `result` before upstream_result existed: the column is empty
        } else if (up?.action === 'review.forward-unknown') {
          result = FORWARD_UNKNOWN_RESULT;
        }
        const upWhere = up ? up.seq : `no review.forwarded after review.created, seq ${created.seq}`;
        if (row.upstream_status !== status) differs('upstream_status', row.upstream_status, status, upWhere);
        if (!sameText(row.upstream_result, result)) differs('upstream_result', row.upstream_result, result, upWhere);
      }
      for (const [id, c] of chain) {
        if (c.created) problems.push(`review ${id}: created in the chain (seq ${c.created.seq}) but not in the table (its row was deleted)`);
      }
      return { checked, withoutShown, withoutDecidedAt, problems };
    },
  };
}
