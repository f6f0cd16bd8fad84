// Append-only, hash-chained audit log, plus its verification and export formats.
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { AirlockError } from '../contract/errors';
import { canonicalJson } from './canonical-json';
import { maskDeep, maskTextPre } from './mask';
import { reviewChainChecker } from './reviews';
import { runToEnd, sealChecker } from './seals';
import { sqlite } from './sqlite';
import type { AuditEvent, AuditLog, ExchangesCheck, ReviewsCheck, Store, VerifyOptions, VerifyResult } from './types';

export const GENESIS_HASH = '0'.repeat(64);
const HASH_RE = /^[0-9a-f]{64}$/;

/** The exact string that is hashed for one event (`strict`: a non-finite number in details is an error, as when verifying). */
export function canonicalEvent(e: Omit<AuditEvent, 'hash'>, strict = false): string {
  return JSON.stringify([e.seq, e.at, e.actor, e.action, e.subject, canonicalJson(e.details, { strict }), e.prevHash]);
}

export function hashEvent(e: Omit<AuditEvent, 'hash'>, strict = false): string {
  return createHash('sha256').update(canonicalEvent(e, strict), 'utf8').digest('hex');
}

interface AuditRow {
  seq: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: string;
  prev_hash: string;
  hash: string;
}

function rowToEvent(r: AuditRow): AuditEvent {
  let details: unknown;
  try {
    details = JSON.parse(r.details);
    // Details are written in canonical form and nothing else. Text that parses to the same value but
    // is written differently was edited: a key written twice (SQL's json_extract reads the first,
    // JSON.parse the last), spaces. Kept as text, so the hash check fails instead of passing on a
    // value the stored text does not show to every reader.
    if (canonicalJson(details) !== r.details) details = r.details;
  } catch {
    details = r.details; // not JSON (tampered): keep the text, so the hash check fails instead of the reader
  }
  return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, subject: r.subject, details, prevHash: r.prev_hash, hash: r.hash };
}

export function createAuditLog(db: Database.Database, now: () => Date, secrets: () => readonly string[] = () => []): AuditLog {
  const headStmt = db.prepare<[], AuditRow>('SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1');
  const insertStmt = db.prepare(
    'INSERT INTO audit_events (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const allStmt = db.prepare<[], AuditRow>('SELECT * FROM audit_events ORDER BY seq');
  const sinceStmt = db.prepare<[string], AuditRow>('SELECT * FROM audit_events WHERE at >= ? ORDER BY seq');

  const appendTx = db.transaction((e: { actor: string; action: string; subject: string; details?: unknown }): AuditEvent => {
    const head = headStmt.get();
    // Timestamps never go backwards along the chain (a clock step back reuses the head's time), so that an
    // `at >= since` export is always a contiguous run of seqs that verifies.
    const clock = now().toISOString();
    const draft = {
      seq: head ? head.seq + 1 : 1,
      at: head && head.at > clock ? head.at : clock,
      // Append-only: a credential written here could never be taken out, so details are masked like the record.
      actor: maskTextPre(e.actor, secrets()),
      action: e.action,
      subject: maskTextPre(e.subject, secrets()),
      details: maskDeep(JSON.parse(canonicalJson(e.details ?? null)) as unknown, secrets()).value,
      prevHash: head ? head.hash : GENESIS_HASH,
    };
    const hash = hashEvent(draft);
    insertStmt.run(draft.seq, draft.at, draft.actor, draft.action, draft.subject, canonicalJson(draft.details), draft.prevHash, hash);
    return { ...draft, hash };
  });

  return {
    append(e) {
      for (const k of ['actor', 'action', 'subject'] as const) {
        if (typeof e[k] !== 'string') throw new AirlockError('bad-request', `Audit event ${k} must be a string.`);
      }
      // A nested call (inside another store transaction) becomes a savepoint; otherwise BEGIN IMMEDIATE.
      return db.inTransaction ? appendTx(e) : appendTx.immediate(e);
    },
    list(q = {}) {
      const rows = q.since === undefined ? allStmt.all() : sinceStmt.all(q.since);
      return rows.map(rowToEvent);
    },
    verify(opts = {}) {
      return runToEnd(verifyDatabase(db, opts));
    },
    async verifyInBackground(opts = {}) {
      if (db.memory) return this.verify(opts);
      // Its own read-only connection, in one read transaction: a snapshot that the gateway's writes (and
      // a retention prune) do not change while the rows are read, a slice per turn of the event loop.
      const ro = new (sqlite())(db.name, { readonly: true, fileMustExist: true });
      try {
        ro.pragma(`busy_timeout = ${5000}`);
        ro.exec('BEGIN');
        const steps = verifyDatabase(ro, opts);
        for (;;) {
          const s = steps.next();
          if (s.done) return s.value;
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        if (ro.inTransaction) ro.exec('COMMIT');
        ro.close();
      }
    },
    head() {
      const r = headStmt.get();
      return r ? rowToEvent(r) : null;
    },
  };
}

/**
 * The database's verify, as steps (each slice of exchange rows read is one): the chain, then the reviews
 * table against it, then the exchanges against their seals.
 */
function* verifyDatabase(db: Database.Database, opts: VerifyOptions): Generator<void, VerifyResult> {
  // One read of the chain and one of the reviews table: verify collects the review events and the seals as it goes.
  const reviews = reviewChainChecker(db);
  const seals = sealChecker(db);
  const all = db.prepare<[], AuditRow>('SELECT * FROM audit_events ORDER BY seq');
  const events = mapIter(all.iterate(), (row) => {
    const e = rowToEvent(row);
    reviews.observe(e);
    seals.observe(e);
    return e;
  });
  const r = verifyEvents(events, { ...opts, allowPartial: false, allowEmpty: true, database: true });
  const recordedSomething = ['agents', 'sessions', 'exchanges'].some((t) => db.prepare(`SELECT 1 FROM ${t} LIMIT 1`).get() !== undefined);
  if (r.ok && r.events === 0 && recordedSomething) {
    // Every write that fills the record (an agent added, a gateway started) appends an event first.
    return { ...r, ok: false, brokenAt: 1, message: 'broken at seq 1: the audit log is empty, but the record holds agents, sessions or exchanges: its events were deleted' };
  }
  // A chain that does not hold vouches for nothing; so does one that is not the kept head's.
  if (!r.ok) return r;
  // A trigger or view of someone else's can change rows as Airlock writes them (delete an agent's exchanges,
  // rewrite a session), and the gateway would then seal what the table holds: the schema is checked first.
  const schema = schemaProblems(db);
  if (schema.length > 0) return failedCheck(r, "the record's schema was changed", schema);
  const withR = withReviews(r, reviews.check());
  if (!withR.ok) return withR;
  return withExchanges(withR, yield* seals.check());
}

/** The triggers Airlock creates (migrations.ts): the audit log's append-only guards. It creates no views. */
const OWN_TRIGGERS = ['audit_events_no_delete', 'audit_events_no_update'];

/** Triggers and views Airlock did not create, and its own triggers missing. */
function schemaProblems(db: Database.Database): string[] {
  const rows = db.prepare<[], { type: string; name: string; tbl_name: string }>("SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('trigger', 'view') ORDER BY name").all();
  const problems = rows.filter((r) => !(r.type === 'trigger' && OWN_TRIGGERS.includes(r.name)))
    .map((r) => `a ${r.type} Airlock did not create ("${r.name}" on ${r.tbl_name}): it can change rows as they are written`);
  for (const name of OWN_TRIGGERS) {
    if (!rows.some((r) => r.type === 'trigger' && r.name === name)) problems.push(`the audit log's append-only trigger "${name}" is gone`);
  }
  return problems;
}

/** A chain that holds, and a table that does not match it: the first ten differences, and how many more. */
function failedCheck(r: VerifyResult, what: string, problems: string[]): VerifyResult {
  const shown = problems.slice(0, 10);
  const more = problems.length - shown.length;
  return {
    ...r,
    ok: false,
    message: `${what}: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}. (The chain itself holds: ${r.message}.)`,
  };
}

/**
 * The chain holds; now the reviews table must say what its events say. A row changed outside Airlock (its
 * state, decider, reason, diff, upstream answer) fails verify, naming the review and the field.
 */
function withReviews(r: VerifyResult, c: ReviewsCheck): VerifyResult {
  if (c.problems.length > 0) return { ...failedCheck(r, 'the reviews table does not match the audit chain', c.problems), reviews: c };
  // Every review compared in full: the message stays the chain's. Otherwise it says what was not compared.
  if (c.withoutShown === 0 && c.withoutDecidedAt === 0) return c.checked === 0 ? r : { ...r, reviews: c };
  const notes: string[] = [];
  if (c.withoutShown > 0) {
    notes.push(`${c.withoutShown} review${c.withoutShown === 1 ? '' : 's'} made before this check: summary and diff not compared`);
  }
  if (c.withoutDecidedAt > 0) {
    notes.push(`${c.withoutDecidedAt} decision${c.withoutDecidedAt === 1 ? '' : 's'} recorded before this check: decided_at not compared`);
  }
  const note = notes.length > 0 ? ` (${notes.join('; ')})` : '';
  return { ...r, reviews: c, message: `${r.message}; ${c.checked} review${c.checked === 1 ? ' matches' : 's match'} the chain${note}` };
}

/**
 * The chain (and the reviews table) holds; now the exchanges must be what their seals say. A row edited,
 * deleted or added outside Airlock fails verify, naming the range and its seal.
 */
function withExchanges(r: VerifyResult, c: ExchangesCheck): VerifyResult {
  const s = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  if (c.problems.length > 0) return { ...failedCheck(r, 'the exchanges table does not match its seals', c.problems), exchanges: c };
  if (c.seals === 0 && c.unsealed === 0) return r;
  const notes: string[] = [];
  if (c.unsealed > 0) notes.push(`${s(c.unsealed, 'exchange', 'exchanges')} recorded since the last seal, not sealed yet`);
  if (c.prunedSeals + c.partlyPrunedSeals > 0) notes.push(`${s(c.prunedSeals + c.partlyPrunedSeals, 'seal', 'seals')} of exchanges retention deleted, not compared`);
  const what = c.sealedSessions > 0
    ? `${s(c.sealedRows, 'exchange', 'exchanges')} and ${s(c.sealedSessions, 'session', 'sessions')} match their`
    : `${s(c.sealedRows, 'exchange matches', 'exchanges match')} ${c.sealedRows === 1 ? 'its' : 'their'}`;
  const matched = c.seals > 0 ? `; ${what} ${c.seals === 1 ? 'seal' : `${c.seals} seals`}` : '';
  return { ...r, exchanges: c, message: `${r.message}${matched}${notes.length > 0 ? `${matched ? ' ' : '; '}(${notes.join('; ')})` : ''}` };
}

function* mapIter<A, B>(it: Iterable<A>, f: (a: A) => B): Generator<B> {
  for (const a of it) yield f(a);
}

/**
 * Checks a sequence of events, in the order given: each hash must match its content, each prevHash the previous
 * event's hash, and seq must increase by exactly one. The first event must be seq 1 with a zero prevHash, unless
 * `allowPartial` (an export made with `since`, said so by the auditor: `verify --partial`) and its seq is > 1:
 * then its prevHash is taken on trust. No events at all is not a log that verifies unless `allowEmpty`.
 */
export function verifyEvents(events: Iterable<AuditEvent>, opts: VerifyOptions & { allowPartial?: boolean; allowEmpty?: boolean; database?: boolean } = {}): VerifyResult {
  const allowPartial = opts.allowPartial ?? false;
  const expected = opts.head === undefined ? null : parseHeadOption(opts.head);
  let headSeq: number | null = null;
  let count = 0;
  let prev: AuditEvent | null = null;
  let partialFrom: number | null = null;
  const broken = (seq: number, what: string): VerifyResult => ({
    ok: false,
    events: count,
    head: prev ? prev.hash : null,
    brokenAt: seq,
    message: `broken at seq ${seq}: ${what}`,
  });
  for (const e of events) {
    const seq = e.seq;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      return broken(prev ? prev.seq + 1 : 1, `invalid seq ${JSON.stringify(seq)}`);
    }
    if (prev === null) {
      if (seq === 1) {
        if (e.prevHash !== GENESIS_HASH) return broken(1, 'the first event must have a prevHash of 64 zeros');
      } else if (allowPartial) {
        partialFrom = seq;
      } else {
        return broken(1, `the log starts at seq ${seq}; events 1 to ${seq - 1} are missing` +
          (opts.database !== true ? ' (an export made with --since starts later: verify it with --partial, which takes its first event\'s predecessor on trust)' : ''));
      }
    } else {
      const expected = prev.seq + 1;
      if (seq !== expected) {
        return broken(
          expected,
          seq > expected
            ? `expected seq ${expected} after ${prev.seq} but found ${seq} (events missing or out of order)`
            : `expected seq ${expected} after ${prev.seq} but found ${seq} (out of order or duplicated)`,
        );
      }
      if (e.prevHash !== prev.hash) return broken(seq, `prevHash does not match the hash of seq ${prev.seq}`);
    }
    if (typeof e.hash !== 'string' || !HASH_RE.test(e.hash)) return broken(seq, 'hash is not 64 lowercase hex digits');
    let actual: string;
    try {
      actual = hashEvent(e, true);
    } catch (err) {
      return broken(seq, `content cannot be hashed (${(err as Error).message})`);
    }
    if (actual !== e.hash) return broken(seq, 'hash does not match the event content (event was modified)');
    if (e.hash === expected) headSeq = seq;
    prev = e;
    count++;
  }
  const head = prev ? prev.hash : null;
  if (count === 0 && opts.allowEmpty !== true) {
    return { ok: false, events: 0, head: null, brokenAt: 1, message: 'broken at seq 1: no events (an export always holds at least the events up to the one that recorded it)' };
  }
  const partial = partialFrom !== null ? ` (partial export starting at seq ${partialFrom})` : '';
  const ok = `ok ${count} events, head ${head ?? 'none'}${partial}`;
  if (expected === null) return { ok: true, events: count, head, brokenAt: null, message: ok };
  if (headSeq === null) {
    // The chain holds together, but not with the head the auditor kept: what followed an earlier event was
    // removed (the end cut off) or written anew (every hash recomputed from some event on). Either way the
    // log is not the one that head was taken from, which no check inside the log alone can show.
    const where = partialFrom !== null
      ? ` This export starts at seq ${partialFrom}: if that head is older, verify an export without --since, or the database.`
      : '';
    return {
      ok: false,
      events: count,
      head,
      brokenAt: null,
      message: `not the log the head ${expected} was taken from: no event has that hash (its events were removed from the end, or rewritten). ` +
        `The chain itself holds: ${ok}.${where}`,
    };
  }
  const since = count - (headSeq - (partialFrom ?? 1) + 1);
  return { ok: true, events: count, head, brokenAt: null, headSeq, message: `${ok}; the head given is seq ${headSeq}, ${since} event${since === 1 ? '' : 's'} since` };
}

/** A kept head (`--head`) as an auditor gives it: the 64 hex digits of a hash that `verify` or `export` printed earlier. */
export function parseHeadOption(value: string): string {
  const v = value.trim().toLowerCase();
  if (!HASH_RE.test(v)) {
    throw new AirlockError('bad-request', `A kept head must be the 64 hex digits of an audit event's hash (as \`airlock audit verify\` prints it), not ${JSON.stringify(value)}.`);
  }
  return v;
}

// ---------------------------------------------------------------- export / import

export const CSV_HEADER = 'seq,at,actor,action,subject,details,prev_hash,hash';

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatAuditEvents(events: Iterable<AuditEvent>, format: 'jsonl' | 'csv'): string {
  const out: string[] = [];
  if (format === 'jsonl') {
    for (const e of events) {
      out.push(
        JSON.stringify({ seq: e.seq, at: e.at, actor: e.actor, action: e.action, subject: e.subject, details: e.details, prevHash: e.prevHash, hash: e.hash }) + '\n',
      );
    }
  } else if (format === 'csv') {
    out.push(CSV_HEADER + '\r\n');
    for (const e of events) {
      const fields = [String(e.seq), e.at, e.actor, e.action, e.subject, canonicalJson(e.details), e.prevHash, e.hash];
      out.push(fields.map(csvField).join(',') + '\r\n');
    }
  } else {
    throw new AirlockError('bad-request', `Unknown audit export format ${JSON.stringify(format)}; use jsonl or csv.`);
  }
  return out.join('');
}

export function exportAudit(store: Store, opts: { format: 'jsonl' | 'csv'; since?: string }): string {
  return formatAuditEvents(store.audit.list(opts.since === undefined ? {} : { since: opts.since }), opts.format);
}

/** Reads an export back (for verifyEvents). AirlockError('bad-request') naming the line when it is malformed. */
export function parseAuditExport(text: string, format: 'jsonl' | 'csv'): AuditEvent[] {
  if (format === 'jsonl') return parseJsonl(text);
  if (format === 'csv') return parseCsv(text);
  throw new AirlockError('bad-request', `Unknown audit export format ${JSON.stringify(format)}; use jsonl or csv.`);
}

function bad(line: number, what: string): AirlockError {
  return new AirlockError('bad-request', `Audit export line ${line}: ${what}.`, { line });
}

const EXPORT_FIELDS = new Set(['seq', 'at', 'actor', 'action', 'subject', 'details', 'prevHash', 'hash']);

function parseJsonl(text: string): AuditEvent[] {
  const events: AuditEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw bad(i + 1, 'not valid JSON');
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(i + 1, 'not a JSON object');
    // JSON.parse keeps the last of two equal keys, a reader (or grep) may see the first: an edit that verifies.
    const dup = duplicateKey(line);
    if (dup !== null) throw bad(i + 1, `the key ${JSON.stringify(dup)} is written twice in one object`);
    const r = o as Record<string, unknown>;
    // Only the fields the hash covers: anything else in the line ("approvedBy": …) would be read by
    // whoever opens the file, and no hash would vouch for it.
    const extra = Object.keys(r).find((k) => !EXPORT_FIELDS.has(k));
    if (extra !== undefined) throw bad(i + 1, `the field ${JSON.stringify(extra)} is not part of an audit event (an export has seq, at, actor, action, subject, details, prevHash and hash only)`);
    for (const k of ['at', 'actor', 'action', 'subject', 'prevHash', 'hash']) {
      if (typeof r[k] !== 'string') throw bad(i + 1, `field ${k} is missing or not a string`);
    }
    if (typeof r.seq !== 'number') throw bad(i + 1, 'field seq is missing or not a number');
    events.push({
      seq: r.seq,
      at: r.at as string,
      actor: r.actor as string,
      action: r.action as string,
      subject: r.subject as string,
      details: r.details ?? null,
      prevHash: r.prevHash as string,
      hash: r.hash as string,
    });
  }
  return events;
}

/** RFC 4180 records (CRLF or LF line ends); returns [lineNumber, fields] per record. */
function csvRecords(text: string): Array<[number, string[]]> {
  const records: Array<[number, string[]]> = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let quoted = false;
  let touched = false; // the current record has content (so a blank line is not a record)
  const endField = () => {
    fields.push(field);
    field = '';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const n = text[i];
        if (n !== undefined && n !== ',' && n !== '\n' && n !== '\r') throw bad(line, 'text after a closing quote');
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"') {
      if (field !== '') throw bad(line, 'a quote inside an unquoted field');
      quoted = true;
      touched = true;
      i++;
    } else if (c === ',') {
      endField();
      touched = true;
      i++;
    } else if (c === '\r' || c === '\n') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      i++;
      if (touched || field !== '') {
        endField();
        records.push([recordLine, fields]);
      }
      fields = [];
      touched = false;
      line++;
      recordLine = line;
    } else {
      field += c;
      touched = true;
      i++;
    }
  }
  if (quoted) throw bad(recordLine, 'unterminated quoted field');
  if (touched || field !== '') {
    endField();
    records.push([recordLine, fields]);
  }
  return records;
}

function parseCsv(text: string): AuditEvent[] {
  const records = csvRecords(text.replace(/^\uFEFF/, ''));
  if (records.length === 0) throw bad(1, `missing header ${CSV_HEADER}`);
  const [, header] = records[0]!;
  if (header.join(',') !== CSV_HEADER) throw bad(records[0]![0], `expected header ${CSV_HEADER}`);
  return records.slice(1).map(([line, f]) => {
    if (f.length !== 8) throw bad(line, `expected 8 fields, found ${f.length}`);
    const [seqText, at, actor, action, subject, detailsText, prevHash, hash] = f as [string, string, string, string, string, string, string, string];
    if (!/^\d+$/.test(seqText)) throw bad(line, 'seq is not a number');
    let details: unknown;
    try {
      details = JSON.parse(detailsText);
    } catch {
      throw bad(line, 'details is not valid JSON');
    }
    const dup = duplicateKey(detailsText);
    if (dup !== null) throw bad(line, `the key ${JSON.stringify(dup)} is written twice in one object of details`);
    return { seq: Number(seqText), at, actor, action, subject, details, prevHash, hash };
  });
}

/** The first key written twice in one object of a JSON text that parses, or null. */
export function duplicateKey(text: string): string | null {
  const objects: Array<Set<string> | null> = []; // null: an array
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = objects[objects.length - 1];
      if (top && keyNext) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        keyNext = false;
      }
      i = j;
    } else if (c === '{') {
      objects.push(new Set());
      keyNext = true;
    } else if (c === '[') {
      objects.push(null);
    } else if (c === '}' || c === ']') {
      objects.pop();
    } else if (c === ',') {
      keyNext = objects[objects.length - 1] != null;
    }
  }
  return null;
}

/** The audit events that record an export with a digest (`sha256` and `bytes` in their details). */
export const EXPORT_ACTIONS = ['exchanges.exported', 'audit.exported'] as const;

/** An export file as `airlock audit verify --export FILE` checks it: its bytes' SHA-256 and size. */
export interface ExportDigest {
  file: string;
  sha256: string;
  bytes: number;
}

export interface ExportMatch {
  file: string;
  /** The event that recorded this exact file, or null: no export with these bytes is in the log. */
  event: AuditEvent | null;
  line: string;
}

/**
 * Which audit event recorded each file as exported (same SHA-256 and size). An export names its
 * digest in its audit event, and the chain covers that event, so a file that matches is byte for
 * byte what Airlock wrote; one that does not was changed, or is not an export of this log.
 */
export function matchExports(events: Iterable<AuditEvent>, files: ExportDigest[]): ExportMatch[] {
  const wanted = new Map(files.map((f) => [f.sha256, f]));
  // Every export event with those bytes: the same query exported twice gives the same file.
  const found = new Map<string, AuditEvent[]>();
  for (const e of events) {
    if (!(EXPORT_ACTIONS as readonly string[]).includes(e.action)) continue;
    const d = e.details as { sha256?: unknown; bytes?: unknown } | null;
    if (d === null || typeof d !== 'object' || typeof d.sha256 !== 'string') continue;
    const f = wanted.get(d.sha256);
    if (f && d.bytes === f.bytes) found.set(d.sha256, [...(found.get(d.sha256) ?? []), e]);
  }
  return files.map((f) => {
    const [e, ...again] = found.get(f.sha256) ?? [];
    if (!e) return { file: f.file, event: null, line: `${f.file}: not an export this audit log recorded (sha256 ${f.sha256}, ${f.bytes} bytes): changed since, or from elsewhere` };
    const d = e.details as { count?: unknown };
    const what = e.action === 'exchanges.exported'
      ? `the ${e.subject} export of ${typeof d.count === 'number' ? `${d.count} exchange${d.count === 1 ? '' : 's'}` : 'exchanges'}`
      : `the ${e.subject} export of the audit log`;
    const also = again.length === 0 ? '' : `; the same bytes were exported again at audit seq ${again.map((x) => x.seq).join(', ')}`;
    return { file: f.file, event: e, line: `${f.file}: ${what} made ${e.at} by ${e.actor} (audit seq ${e.seq}), unchanged${also}` };
  });
}
