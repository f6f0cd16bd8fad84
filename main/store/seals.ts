// Seals: the exchanges table made tamper-evident through the audit chain.
//
// Every few minutes (and at shutdown, and before retention deletes anything) the gateway appends one audit
// event `exchanges.sealed` holding the count of the exchanges written since the last seal and the SHA-256
// of their rows' digests in id order. The chain vouches for the event, the event for the rows: `audit
// verify` reads every row again and names the seal whose rows were edited, deleted or added.
// A row's digest (SHA-256 of a canonical line of its values, its bodies as one hash) is computed when the
// gateway hands the row to its writer (~3 µs with two 1 KiB bodies) and kept until the row is sealed;
// rows this process did not write (an earlier gateway's, a row restored after a crash) are read back, in
// slices of SLICE_ROWS, one slice per turn of the event loop.
//
// Exchange ids are handed out when an exchange starts and its row is written when it ends, so a seal
// names the ids still in flight (`open`); a later seal covers those rows once they are written (`closed`).
// Bodies dropped to keep the body budget leave their part of the seal in `bodies_sealed`, so dropping
// them (a change Airlock makes itself) does not break the seal of their row.
import crypto, { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { AuditEvent, AuditLog, ExchangesCheck } from './types';

/** A seal is made this often while new exchanges are recorded (and at shutdown, and before pruning). */
export const SEAL_EVERY_MS = 5 * 60_000;
/** ...or as soon as this many exchanges wait for one (bounds a seal's work and what one broken seal names). */
export const SEAL_MAX_ROWS = 20_000;
/** Rows read and hashed per turn of the event loop while a seal is made in the background (~2–3 ms). */
export const SLICE_ROWS = 500;
export const SEAL_ACTION = 'exchanges.sealed';

/** What a seal event's details hold. */
export interface SealDetails {
  /** The seal covers the rows with ids in (from, to], except `open`, and the rows of `closed`. */
  from: number;
  to: number;
  /** Ids in (from, to] handed out but not yet written when the seal was made (exchanges still in flight). */
  open: number[];
  /** Ids an earlier seal left open whose rows were written since: covered by this seal. */
  closed: number[];
  count: number;
  sha256: string;
  /** The sessions (agent connections) that ended since the last seal, and the SHA-256 of their rows in this order. */
  sessions?: { ids: string[]; sha256: string };
}

/** At most this many sessions a seal (the rest go in the next one). */
export const SEAL_MAX_SESSIONS = 10_000;
const SESSION_COLUMNS = 'id, agent, client_address, started_at, ended_at, token, via';

/** The SHA-256 of the given sessions' rows' digests, in this order, and the ids with no row. */
function hashSessions(db: Database.Database, ids: readonly string[]): { sha256: string; missing: string[] } {
  const one = db.prepare<[string], unknown[]>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = ?`).raw();
  const hash = createHash('sha256');
  const missing: string[] = [];
  for (const id of ids) {
    const r = one.get(id);
    if (!r) {
      missing.push(id);
      continue;
    }
    let line = '';
    for (const v of r) line += field(v);
    hash.update(sha256Hex(line) + '\n');
  }
  return { sha256: hash.digest('hex'), missing };
}

/** The columns a seal covers, in this order; the nine body columns become one part. */
const ROW_COLUMNS =
  'id, session_id, agent, started_at, ended_at, method, scheme, host, port, path, kind, verdict, rule_id, explanation, ' +
  'status, error, request_bytes, response_bytes, connect_ms, tls_ms, upstream_ms, total_ms, request_headers, response_headers, review_id, ' +
  'request_body, request_body_encoding, request_body_complete, request_body_sha256, ' +
  'response_body, response_body_encoding, response_body_complete, response_body_sha256, bodies_sealed';
const PLAIN = 25;

/** A row's body columns, as the seal reads them. */
export interface SealedBodies {
  req: Buffer | null; reqEncoding: string | null; reqComplete: number; reqSha: string | null;
  res: Buffer | null; resEncoding: string | null; resComplete: number; resSha: string | null;
}

/**
 * The bodies' part of their row's seal: one SHA-256 of the bytes stored (as stored: compressed or not; the
 * request's length first), each body's encoding, whether it is whole, and the SHA-256 of the body as sent
 * where the row keeps one. Once the bodies are dropped (the body budget drops both), the part they had,
 * kept in `bodies_sealed`.
 */
export function bodiesSealPart(b: SealedBodies, sealed: string | null): string {
  const meta = `${b.reqEncoding ?? ''}:${b.reqComplete}:${b.reqSha ?? ''}:${b.resEncoding ?? ''}:${b.resComplete}:${b.resSha ?? ''}`;
  if (b.req === null && b.res === null) {
    if (sealed === null) return `:${meta}`;
    // The part is taken on trust only as far as the row still reads as the body budget left it: a part put
    // there by hand, or the row's hashes, flags or encodings changed since, make the row differ from its seal.
    return droppedAsAirlockDrops(sealed, b) ? sealed : `${sealed}|now:${meta}`;
  }
  return `${b.req === null ? '-' : sha256Hex(b.req)}/${b.res === null ? '-' : sha256Hex(b.res)}:${meta}`;
}

/**
 * Whether a row without bodies reads as the body budget leaves one (exchanges.ts, dropBodies) given the part
 * its bodies had (`sealed`): both encodings gone; a dropped body marked not whole, a missing one as it was;
 * each SHA-256 the one recorded, or for a body stored whole and uncompressed its own (which the part holds).
 * A compressed body's hash as sent is not in the part: any SHA-256 is taken there.
 */
function droppedAsAirlockDrops(sealed: string, b: SealedBodies): boolean {
  const m = /^([0-9a-f]{64}|-)\/([0-9a-f]{64}|-):([^:]*):([01]):([0-9a-f]{64}|):([^:]*):([01]):([0-9a-f]{64}|)$/.exec(sealed);
  if (!m) return false; // Airlock drops bodies only from rows that had one, and writes this form
  const side = (stored: string, enc: string, complete: string, sha: string, nowEnc: string | null, nowComplete: number, nowSha: string | null): boolean => {
    if (nowEnc !== null) return false;
    if (nowComplete !== (stored === '-' ? Number(complete) : 0)) return false;
    if (sha !== '') return nowSha === sha;
    if (stored === '-') return nowSha === null;
    if (complete === '1' && enc === '') return nowSha === stored;
    return nowSha !== null && /^[0-9a-f]{64}$/.test(nowSha);
  };
  return side(m[1]!, m[3]!, m[4]!, m[5]!, b.reqEncoding, b.reqComplete, b.reqSha) && side(m[2]!, m[6]!, m[7]!, m[8]!, b.resEncoding, b.resComplete, b.resSha);
}

type OneShot = { hash(alg: string, data: Buffer | string, enc?: string): string | Buffer };
const oneShot = typeof (crypto as { hash?: unknown }).hash === 'function' ? (crypto as unknown as OneShot) : null;
/** One-shot SHA-256 (`crypto.hash`, Node 20.12+: no hash object per call), else through a hash object. */
const sha256Hex = (b: Buffer | string): string => (oneShot ? (oneShot.hash('sha256', b) as string) : createHash('sha256').update(b).digest('hex'));
const sha256Bytes = (b: Buffer | string): Buffer => (oneShot ? (oneShot.hash('sha256', b, 'buffer') as Buffer) : createHash('sha256').update(b).digest());

/**
 * One value of a row in the line a seal hashes: `n` for NULL, `i<number>;` for a number, `s<length>:<text>`
 * for text (its length makes the encoding unambiguous whatever the text holds). Cheaper than JSON, which
 * would escape every quote of the header JSON stored in the row.
 */
function field(v: unknown): string {
  if (v === null || v === undefined) return 'n';
  if (typeof v === 'number' || typeof v === 'bigint') return `i${v};`;
  const t = String(v);
  return `s${t.length}:${t}`;
}

/** A lone surrogate (text that is not valid Unicode): SQLite keeps it in a form that reads back otherwise. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** One row (as `SELECT ${ROW_COLUMNS}` returns it, raw): the SHA-256 of its line. A seal hashes its rows' digests in id order. */
export function rowDigest(r: unknown[]): Buffer {
  let line = '';
  for (let i = 0; i < PLAIN; i++) line += field(r[i]);
  line += field(bodiesSealPart({
    req: r[25] as Buffer | null, reqEncoding: r[26] as string | null, reqComplete: r[27] as number, reqSha: r[28] as string | null,
    res: r[29] as Buffer | null, resEncoding: r[30] as string | null, resComplete: r[31] as number, resSha: r[32] as string | null,
  }, r[33] as string | null));
  return sha256Bytes(line);
}

/**
 * Where each of a row's values (ROW_COLUMNS order) is in a write's values (the writer's EXCHANGE_COLUMNS
 * order, exchanges.ts); -1: not written by the writer (a dropped body's part: none yet).
 */
const FROM_WIRE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 28];

/**
 * A row's digest from the values the writer writes (the same digest `rowDigest` gives once it is read
 * back): the gateway keeps those of the rows it wrote, so a seal reads back only the rows it did not write.
 */
/** A write's body values (the writer's EXCHANGE_COLUMNS order, exchanges.ts). */
export function wireBodies(v: readonly unknown[]): SealedBodies {
  return {
    req: v[29] as Buffer | null, reqEncoding: v[31] as string | null, reqComplete: v[24] as number, reqSha: v[26] as string | null,
    res: v[30] as Buffer | null, resEncoding: v[32] as string | null, resComplete: v[25] as number, resSha: v[27] as string | null,
  };
}

export function wireDigest(values: readonly unknown[]): Buffer | null {
  let line = '';
  for (let i = 0; i < PLAIN; i++) {
    const v = values[FROM_WIRE[i]!];
    // Text SQLite would not read back as it is written: the row is read back when it is sealed.
    if (typeof v === 'string' && LONE_SURROGATE.test(v)) return null;
    line += field(v);
  }
  const v = values as (Buffer | string | number | null)[];
  line += field(bodiesSealPart(wireBodies(v), null));
  return sha256Bytes(line);
}

/**
 * Hashes the rows a seal covers: the closed ids first, then (from, to] without the open ids; all in id order.
 * With `known` (the digests of rows this process wrote), only the ids are read and a row is read back
 * only when its digest is not known; without it (verify), every row is read.
 */
function* hashRows(
  db: Database.Database,
  d: Pick<SealDetails, 'from' | 'to' | 'open' | 'closed'>,
  sliceRows = SLICE_ROWS,
  known?: TakenDigests,
): Generator<void, { count: number; sha256: string }> {
  const hash = createHash('sha256');
  let count = 0;
  // The digests of a slice, side by side: one hash update per slice.
  const chunk = Buffer.allocUnsafe(Math.max(sliceRows, 1) * 32);
  let inChunk = 0;
  const add = (dg: Buffer, at = 0): void => {
    dg.copy(chunk, inChunk * 32, at, at + 32);
    count++;
    if (++inChunk === sliceRows) {
      hash.update(chunk);
      inChunk = 0;
    }
  };
  const one = db.prepare<[number], unknown[]>(`SELECT ${ROW_COLUMNS} FROM exchanges WHERE id = ?`).raw();
  /** A row's digest: known (this process wrote it), or read back; false when there is no such row. */
  const addById = (id: number): boolean => {
    const at = known?.index.get(id);
    if (at !== undefined && at >= 0) {
      add(known!.bytes, at);
      return true;
    }
    const r = one.get(id); // not known, or written but its digest could not be taken then
    if (!r) return false;
    add(rowDigest(r));
    return true;
  };
  for (const id of [...d.closed].sort((a, b) => a - b)) addById(id); // a row deleted since: the count says so
  const open = new Set(d.open);
  const page = known
    ? db.prepare<[number, number, number], unknown[]>('SELECT id FROM exchanges WHERE id > ? AND id <= ? ORDER BY id LIMIT ?').raw()
    : db.prepare<[number, number, number], unknown[]>(`SELECT ${ROW_COLUMNS} FROM exchanges WHERE id > ? AND id <= ? ORDER BY id LIMIT ?`).raw();
  let after = d.from;
  for (;;) {
    const rows = page.all(after, d.to, sliceRows);
    for (const r of rows) {
      const id = r[0] as number;
      if (open.has(id)) continue;
      if (known) addById(id);
      else add(rowDigest(r));
    }
    if (rows.length < sliceRows) break;
    after = rows[rows.length - 1]![0] as number;
    yield;
  }
  if (inChunk > 0) hash.update(chunk.subarray(0, inChunk * 32));
  return { count, sha256: hash.digest('hex') };
}

/** Runs steps (a generator that yields between slices of work) to the end, here and now. */
export function runToEnd<T>(g: Generator<void, T>): T {
  for (;;) {
    const s = g.next();
    if (s.done) return s.value;
  }
}

/** A seal about to be made; `cut`: it ends where a day's rows end, and more rows wait. */
type Plan = Omit<SealDetails, 'count' | 'sha256'> & { cut: boolean };
/** A plan hashed: the exchanges' count and hash, and the sessions'. */
type Hashed = { count: number; sha256: string };

export interface Sealer {
  /** An exchange id handed out (in flight until recorded). */
  issued(id: number): void;
  /** An exchange recorded (its row is queued). */
  recorded(id: number): void;
  /** A row as the writer will write it (values in its column order), final: its digest is kept until it is sealed. */
  wrote(values: readonly unknown[]): void;
  /** Starts the timer (first write of this process): a reader never seals. */
  start(): void;
  /** Whether start() was called: this process records, so it seals at shutdown. */
  active(): boolean;
  /**
   * Seals everything written so far, here and now (a seal under way in the background is finished first).
   * `flush` must have written every queued row. Returns the event, or null when there was nothing to seal.
   */
  sealNow(): AuditEvent | null;
  /** Deleting exchanges up to `through` (whole seals): forgets their seal bookkeeping. Inside the caller's transaction. */
  pruned(through: number): void;
  stop(): void;
}

/**
 * The gateway's sealer. `flush` writes every queued exchange (and waits for the writer); `canWrite` is false
 * while the database refuses writes (a seal then waits: the rows it would cover are held in memory).
 */
export function createSealer(
  db: Database.Database,
  audit: AuditLog,
  opts: { flush: () => void; canWrite: () => boolean; onError: (e: unknown) => void; everyMs?: number; maxRows?: number; sliceRows?: number },
): Sealer {
  const everyMs = opts.everyMs ?? SEAL_EVERY_MS;
  const maxRows = opts.maxRows ?? SEAL_MAX_ROWS;
  const outstanding = new Set<number>();
  /** Digests of the rows this process wrote since the last seal (at most ~maxRows: a seal is made then). */
  const log = new DigestLog();
  let recordedSince = 0;
  let timer: NodeJS.Timeout | null = null;
  let started = false;
  let stopped = false;
  /** A seal being made in the background: its plan and the hashing still to do. */
  let kick: NodeJS.Immediate | null = null;
  const kickSoon = (): void => {
    if (!kick && !stopped) kick = setImmediate(() => {
      kick = null;
      begin();
    });
  };
  let running: { plan: Plan; steps: Generator<void, { count: number; sha256: string }>; immediate: NodeJS.Immediate | null } | null = null;

  const throughSet = db.prepare<[number]>("INSERT INTO counters (name, next) VALUES ('sealed-through', ?) ON CONFLICT(name) DO UPDATE SET next = max(next, excluded.next)");
  const maxId = db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM exchanges');
  const startedOf = db.prepare<[number], { started_at: string }>('SELECT started_at FROM exchanges WHERE id = ?');
  const firstAfter = db.prepare<[number], { id: number; started_at: string }>('SELECT id, started_at FROM exchanges WHERE id > ? ORDER BY id LIMIT 1');
  // Walks only the rows since the last seal (in id order, which is start order): no index on started_at.
  const startedFrom = db.prepare<[number, string], { id: number }>('SELECT id FROM exchanges WHERE id > ? AND started_at >= ? ORDER BY id LIMIT 1');
  const sessionsToSeal = db.prepare<[number], { id: string }>(
    'SELECT id FROM sessions INDEXED BY sessions_to_seal WHERE ended_at IS NOT NULL AND sealed IS NULL ORDER BY id LIMIT ?',
  );
  const sessionSealed = db.prepare<[string]>('UPDATE sessions SET sealed = 1 WHERE id = ?');
  const openAdd = db.prepare<[number]>('INSERT OR IGNORE INTO seal_open (id) VALUES (?)');
  const openDel = db.prepare<[number]>('DELETE FROM seal_open WHERE id = ?');
  const openPrune = db.prepare<[number]>('DELETE FROM seal_open WHERE id <= ?');
  const boundaryAdd = db.prepare<[number, number]>('INSERT OR REPLACE INTO exchange_seals (upto, seq) VALUES (?, ?)');
  const boundaryPrune = db.prepare<[number]>('DELETE FROM exchange_seals WHERE upto <= ?');

  /**
   * Where the last seal ended and the ids seals left open, from the chain (read once, when this process first
   * seals, then kept here): `counters` and `seal_open` are tables anyone with the file can change, and a seal
   * that trusted them could be made to skip rows (a moved counter) or never cover an id (one taken out of
   * seal_open). The tables are still written, for older Airlock.
   */
  let chain: { to: number; open: Set<number> } | null = null;
  const fromChain = (): { to: number; open: Set<number> } => {
    if (chain) return chain;
    let to = 0;
    const open = new Set<number>();
    for (const { d } of chainSeals(db)) {
      to = Math.max(to, d.to);
      for (const id of d.closed) open.delete(id);
      for (const id of d.open) open.add(id);
    }
    const done = prunedThroughInChain(db);
    for (const id of open) if (id <= done) open.delete(id);
    chain = { to, open };
    return chain;
  };
  const through = (): number => fromChain().to;
  const rowExists = db.prepare<[number], { id: number }>('SELECT id FROM exchanges WHERE id = ?');

  /**
   * What the next seal covers, or null when nothing was written since the last one. A seal never spans two
   * days (UTC, by start time): retention deletes whole seals, so a seal holding last quarter's rows with
   * today's would keep them all (the first seal after an upgrade meets a whole record's worth).
   */
  function plan(): Plan | null {
    const from = through();
    let to = Math.max(from, maxId.get()?.id ?? 0);
    let dayCut = false;
    const first = firstAfter.get(from);
    // Ids are in start order: when the last row started on the first one's day, so did every row between.
    const last = to > from ? startedOf.get(to) : undefined;
    if (first && to > from && (last === undefined || last.started_at.slice(0, 10) !== first.started_at.slice(0, 10))) {
      const day = Date.parse(first.started_at.slice(0, 10));
      const cut = Number.isFinite(day) ? startedFrom.get(from, new Date(day + 86_400_000).toISOString().slice(0, 10)) : undefined;
      if (cut && cut.id - 1 > from && cut.id - 1 < to) {
        to = cut.id - 1;
        dayCut = true;
      }
    }
    const closed = [...fromChain().open].filter((id) => rowExists.get(id) !== undefined).sort((a, b) => a - b);
    const sessions = sessionsToSeal.all(SEAL_MAX_SESSIONS).map((r) => r.id);
    if (to === from && closed.length === 0 && sessions.length === 0) return null;
    const open = [...outstanding].filter((id) => id > from && id <= to).sort((a, b) => a - b);
    // Sessions are few (one per agent connection) and read here, at once: their rows are short.
    return { from, to, open, closed, cut: dayCut, ...(sessions.length > 0 ? { sessions: { ids: sessions, sha256: hashSessions(db, sessions).sha256 } } : {}) };
  }

  const appendTx = db.transaction((d: SealDetails): AuditEvent => {
    const e = audit.append({ actor: 'system', action: SEAL_ACTION, subject: 'exchanges', details: d });
    for (const id of d.closed) openDel.run(id);
    for (const id of d.open) openAdd.run(id);
    for (const id of d.sessions?.ids ?? []) sessionSealed.run(id);
    throughSet.run(d.to);
    boundaryAdd.run(d.to, e.seq);
    return e;
  });
  /** Appends the seal; its open ids are then kept by `seal_open`, not in memory (an id never recorded is not kept forever). */
  function append(p: Plan & Hashed): AuditEvent {
    const d: SealDetails = { from: p.from, to: p.to, open: p.open, closed: p.closed, count: p.count, sha256: p.sha256, ...(p.sessions ? { sessions: p.sessions } : {}) };
    const e = appendTx.immediate(d);
    for (const id of d.open) outstanding.delete(id);
    // Committed: what the chain now says.
    const c = fromChain();
    for (const id of d.closed) c.open.delete(id);
    for (const id of d.open) c.open.add(id);
    c.to = Math.max(c.to, d.to);
    return e;
  }

  function finishRunning(): AuditEvent | null {
    const r = running;
    if (!r) return null;
    running = null;
    if (r.immediate) clearImmediate(r.immediate);
    const { count, sha256 } = runToEnd(r.steps);
    return append({ ...r.plan, count, sha256 });
  }

  function step(): void {
    const r = running;
    if (!r) return;
    r.immediate = null;
    try {
      const s = r.steps.next();
      if (!s.done) {
        r.immediate = setImmediate(step);
        return;
      }
      running = null;
      append({ ...r.plan, ...s.value });
      // A seal cut at the end of a day: the next day's rows are sealed next, without waiting for the timer.
      if (r.plan.cut) kickSoon();
    } catch (e) {
      running = null;
      if (!stopped) opts.onError(e); // tried again at the next tick
    }
  }

  function begin(): void {
    if (running || stopped || !opts.canWrite()) return;
    try {
      opts.flush();
      if (!opts.canWrite()) return; // the flush failed: what it held is not in the table yet
      const p = plan();
      recordedSince = 0;
      if (!p) return;
      running = { plan: p, steps: hashRows(db, p, opts.sliceRows, log.take(p.to)), immediate: null };
      running.immediate = setImmediate(step);
    } catch (e) {
      running = null;
      opts.onError(e);
    }
  }

  return {
    issued(id) {
      outstanding.add(id);
    },
    wrote(values) {
      log.add(values[0] as number, wireDigest(values));
    },
    recorded(id) {
      outstanding.delete(id);
      if (++recordedSince >= maxRows && started && !running) kickSoon();
    },
    start() {
      if (started || stopped) return;
      started = true;
      timer = setInterval(begin, everyMs);
      timer.unref();
    },
    active: () => started,
    sealNow() {
      if (stopped || !opts.canWrite()) return null;
      const finished = finishRunning();
      opts.flush();
      if (!opts.canWrite()) return finished;
      recordedSince = 0;
      let last = finished;
      for (let p = plan(); p; p = plan()) last = append({ ...p, ...runToEnd(hashRows(db, p, SLICE_ROWS, log.take(p.to))) });
      return last;
    },
    pruned(upto) {
      openPrune.run(upto);
      boundaryPrune.run(upto);
      if (chain) for (const id of chain.open) if (id <= upto) chain.open.delete(id);
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      if (running?.immediate) clearImmediate(running.immediate);
      log.clear();
      if (kick) clearImmediate(kick);
      kick = null;
      running = null;
    },
  };
}

/** Digests taken for one seal: where each id's 32 bytes are in `bytes` (-1: read the row back). */
interface TakenDigests {
  index: Map<number, number>;
  bytes: Buffer;
}

/**
 * The digests of the rows this process wrote since the last seal: ids in a typed array, digests in one
 * buffer, no object per row. A row lives seconds to minutes here, so a Map of strings would move every
 * entry into V8's old generation and cost a collection's work per row.
 */
class DigestLog {
  private ids = new Float64Array(1024);
  private bytes = Buffer.alloc(1024 * 32);
  private n = 0;

  /** A row written (again: the last entry for an id wins); null: its digest could not be taken, read it back. */
  add(id: number, digest: Buffer | null): void {
    if (this.n === this.ids.length) {
      const ids = new Float64Array(this.n * 2);
      ids.set(this.ids);
      this.ids = ids;
      const bytes = Buffer.alloc(this.n * 2 * 32);
      this.bytes.copy(bytes);
      this.bytes = bytes;
    }
    this.ids[this.n] = digest === null ? -id : id;
    if (digest !== null) digest.copy(this.bytes, this.n * 32, 0, 32);
    this.n++;
  }

  /** The entries with ids up to `to`, for one seal (id → offset of its digest, -1: read it back); the others stay. */
  take(to: number): TakenDigests {
    const index = new Map<number, number>();
    const bytes = Buffer.allocUnsafe(this.n * 32);
    let taken = 0;
    let kept = 0;
    for (let i = 0; i < this.n; i++) {
      const v = this.ids[i]!;
      const id = Math.abs(v);
      if (id <= to) {
        if (v < 0) index.set(id, -1);
        else {
          this.bytes.copy(bytes, taken * 32, i * 32, i * 32 + 32);
          index.set(id, taken * 32);
          taken++;
        }
      } else {
        if (kept !== i) {
          this.ids[kept] = v;
          this.bytes.copy(this.bytes, kept * 32, i * 32, i * 32 + 32);
        }
        kept++;
      }
    }
    this.n = kept;
    return { index, bytes };
  }

  clear(): void {
    this.n = 0;
  }
}

/** The seals in the chain, in order (the audit log is the authority: `exchange_seals` is only a table). */
function chainSeals(db: Database.Database): { seq: number; d: SealDetails }[] {
  const out: { seq: number; d: SealDetails }[] = [];
  for (const r of db.prepare<[string], { seq: number; details: string }>('SELECT seq, details FROM audit_events WHERE action = ? ORDER BY seq').iterate(SEAL_ACTION)) {
    let d: unknown;
    try {
      d = JSON.parse(r.details);
    } catch {
      continue;
    }
    if (isSealDetails(d)) out.push({ seq: r.seq, d });
  }
  return out;
}

/** How far retention has deleted, as its events in the chain say. */
function prunedThroughInChain(db: Database.Database): number {
  let through = 0;
  for (const r of db.prepare<[], { details: string }>("SELECT details FROM audit_events WHERE action = 'retention.pruned' AND subject = 'exchanges'").iterate()) {
    try {
      const t = (JSON.parse(r.details) as { throughId?: unknown }).throughId;
      if (Number.isSafeInteger(t) && (t as number) > through) through = t as number;
    } catch { /* not a retention event Airlock wrote */ }
  }
  return through;
}

/**
 * Where retention may delete up to, from the seals in the chain: the end of the last seal that ends before
 * `firstKept` (0: nothing), once every seal it would delete still matches its rows. Rows are chosen by their
 * start time, which anyone with the file can change: a row backdated (or a boundary faked in `exchange_seals`)
 * would have Airlock itself delete evidence. A seal that does not match is not deleted: `refused` names it.
 */
export function pruneBoundary(db: Database.Database, firstKept: number): { through: number; refused: string | null } {
  const done = prunedThroughInChain(db);
  let through = 0;
  const toCheck: { seq: number; d: SealDetails }[] = [];
  for (const s of chainSeals(db)) {
    if (s.d.to >= firstKept) break; // seals follow one another: the rest end later
    through = s.d.to;
    if (s.d.to > done) toCheck.push(s);
  }
  for (const { seq, d } of toCheck) {
    let lowest = d.from + 1;
    for (const id of d.closed) if (id < lowest) lowest = id;
    if (lowest <= done) continue; // part of it deleted already (an id it closed): it cannot be compared
    const got = runToEnd(hashRows(db, d));
    if (got.count !== d.count || got.sha256 !== d.sha256) {
      return { through: 0, refused: `exchanges ${d.from + 1}–${d.to} no longer match their seal (seq ${seq}): nothing was deleted; \`airlock audit verify\` says more` };
    }
  }
  return { through, refused: null };
}

function isSealDetails(d: unknown): d is SealDetails {
  if (typeof d !== 'object' || d === null) return false;
  const s = d as Record<string, unknown>;
  const ids = (v: unknown): boolean => Array.isArray(v) && v.every((n) => Number.isSafeInteger(n));
  const sessions = s.sessions as { ids?: unknown; sha256?: unknown } | undefined;
  const sessionsOk = sessions === undefined ||
    (typeof sessions === 'object' && sessions !== null && Array.isArray(sessions.ids) && sessions.ids.every((v) => typeof v === 'string') && typeof sessions.sha256 === 'string');
  return Number.isSafeInteger(s.from) && Number.isSafeInteger(s.to) && Number.isSafeInteger(s.count) &&
    typeof s.sha256 === 'string' && ids(s.open) && ids(s.closed) && sessionsOk;
}

/**
 * The exchanges table compared with the chain's seals (`AuditLog.verify`, once the chain holds): each seal's
 * rows are read and hashed again. Rows deleted by retention (its events name how far) are not compared;
 * rows written since the last seal are counted as not sealed yet.
 */
export function sealChecker(db: Database.Database): { observe(e: AuditEvent): void; check(): Generator<void, ExchangesCheck> } {
  const seals: { seq: number; at: string; d: SealDetails }[] = [];
  const problems: string[] = [];
  let prunedThrough = 0;
  const prunes: { seq: number; through: number }[] = [];
  /** How far the body budget dropped bodies (oldest first), as its events say; null once one does not say (older Airlock). */
  let bodiesThrough: number | null = 0;
  return {
    observe(e) {
      if (e.action === SEAL_ACTION) {
        if (isSealDetails(e.details)) seals.push({ seq: e.seq, at: e.at, d: e.details });
        else problems.push(`seal seq ${e.seq}: its details are not a seal`);
      } else if (e.action === 'retention.pruned' && e.subject === 'bodies') {
        const t = (e.details as { throughId?: unknown } | null)?.throughId;
        if (!Number.isSafeInteger(t)) bodiesThrough = null;
        else if (bodiesThrough !== null && (t as number) > bodiesThrough) bodiesThrough = t as number;
      } else if (e.action === 'retention.pruned' && e.subject === 'exchanges') {
        const t = (e.details as { throughId?: unknown } | null)?.throughId;
        if (Number.isSafeInteger(t) && (t as number) > 0) prunes.push({ seq: e.seq, through: t as number });
        if (Number.isSafeInteger(t) && (t as number) > prunedThrough) prunedThrough = t as number;
      }
    },
    *check() {
      let sealedRows = 0;
      let sealedSessions = 0;
      let pruned = 0;
      let partlyPruned = 0;
      const open = new Set<number>();
      const sealedSessionIds = new Set<string>();
      // Seals follow one another: each starts where the one before ended (the first at the record's start).
      // A gap is rows no seal covers (the gateway's counter of what is sealed was moved): they are named.
      let end = 0;
      for (const { seq, d } of seals) {
        const range = d.from === d.to ? 'no new range' : `${d.from + 1}–${d.to}`;
        if (d.from !== end) {
          problems.push(d.from > end
            ? `seal seq ${seq} starts after exchange ${d.from}, but the seals before it end at ${end}: exchanges ${end + 1}–${d.from} were never sealed`
            : `seal seq ${seq} starts at exchange ${d.from + 1}, inside what the seals before it covered (up to ${end})`);
        }
        end = Math.max(end, d.to);
        if (d.sessions) {
          for (const id of d.sessions.ids) sealedSessionIds.add(id);
          // Sessions are never deleted by Airlock: every one a seal names must be there, as it was.
          const got = hashSessions(db, d.sessions.ids);
          if (got.missing.length > 0) problems.push(`sessions sealed at seq ${seq}: ${got.missing.length} of ${d.sessions.ids.length} deleted (${got.missing.slice(0, 3).join(', ')}${got.missing.length > 3 ? ', …' : ''})`);
          else if (got.sha256 !== d.sessions.sha256) problems.push(`sessions sealed at seq ${seq}: a session was changed since the seal (its ${d.sessions.ids.length} sessions no longer hash to ${d.sessions.sha256.slice(0, 12)}…)`);
          else sealedSessions += d.sessions.ids.length;
        }
        for (const id of d.closed) {
          if (!open.has(id)) problems.push(`seal seq ${seq} covers exchange ${id}, which no earlier seal left open`);
          open.delete(id);
        }
        for (const id of d.open) open.add(id);
        let lowest = d.from + 1;
        for (const id of d.closed) if (id < lowest) lowest = id; // a loop: a seal may close many ids
        if (d.to <= prunedThrough && d.closed.every((id) => id <= prunedThrough)) {
          pruned++;
          continue;
        }
        if (lowest <= prunedThrough) {
          partlyPruned++;
          continue;
        }
        const got = yield* hashRows(db, d);
        if (got.count !== d.count) {
          problems.push(`exchanges ${range} (sealed at seq ${seq}): ${got.count} rows where the seal counted ${d.count} (${got.count < d.count ? 'rows deleted' : 'rows added'})`);
        } else if (got.sha256 !== d.sha256) {
          problems.push(`exchanges ${range} (sealed at seq ${seq}): a row was changed since the seal (its ${d.count} rows no longer hash to ${d.sha256.slice(0, 12)}…)`);
        } else sealedRows += d.count;
      }
      // The body budget drops bodies oldest first, and its events say how far: bodies gone from a row past that
      // were removed by someone else (their hashes left in place, as the budget leaves them).
      if (bodiesThrough !== null) {
        const rows = db.prepare<[number], { id: number }>('SELECT id FROM exchanges WHERE bodies_sealed IS NOT NULL AND id > ? ORDER BY id LIMIT 4').all(bodiesThrough);
        if (rows.length > 0) {
          problems.push(`the bodies of exchange${rows.length === 1 ? '' : 's'} ${rows.slice(0, 3).map((r) => r.id).join(', ')}${rows.length > 3 ? ', …' : ''} were removed, past where the body budget dropped any (${bodiesThrough === 0 ? 'it dropped none' : `up to ${bodiesThrough}`})`);
        }
      }
      // Retention deletes whole seals: a boundary anywhere else was not Airlock's (an event appended by hand).
      for (const p of prunes) {
        if (!seals.some(({ seq, d }) => seq < p.seq && d.to === p.through)) {
          problems.push(`retention event seq ${p.seq} deleted exchanges up to ${p.through}, where no earlier seal ends`);
        }
      }
      // Every session that ended before a seal was made is in the next seal (at most SEAL_MAX_SESSIONS a
      // seal): one that ended before the last seal but one and is in none was kept out (its `sealed` flag set
      // by hand). The last seal is left out: it was planned before its event was written.
      const before = seals.length >= 2 ? seals[seals.length - 2]! : null;
      if (before && seals.every(({ d }) => (d.sessions?.ids.length ?? 0) < SEAL_MAX_SESSIONS)) {
        const kept: string[] = [];
        for (const r of db.prepare<[string], { id: string }>('SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ? ORDER BY id').iterate(before.at)) {
          if (!sealedSessionIds.has(r.id)) kept.push(r.id);
        }
        if (kept.length > 0) problems.push(`${kept.length} session${kept.length === 1 ? '' : 's'} ended before seal seq ${before.seq} but no seal covers ${kept.length === 1 ? 'it' : 'them'} (${kept.slice(0, 3).join(', ')}${kept.length > 3 ? ', …' : ''})`);
      }
      // Retention deletes every row up to where it pruned: a row there now was put there afterwards.
      const below = db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM exchanges WHERE id <= ?').get(prunedThrough)!.n;
      if (below > 0) problems.push(`${below} exchange${below === 1 ? '' : 's'} with ids up to ${prunedThrough}, where retention deleted every row (rows added)`);
      const last = seals.length > 0 ? seals[seals.length - 1]!.d.to : 0;
      const after = db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM exchanges WHERE id > ?').get(Math.max(last, prunedThrough))!.n;
      let inFlight = 0;
      const exists = db.prepare<[number], { id: number }>('SELECT id FROM exchanges WHERE id = ?');
      for (const id of open) if (id > prunedThrough && exists.get(id)) inFlight++;
      return { seals: seals.length, sealedRows, sealedSessions, unsealed: after + inFlight, prunedSeals: pruned, partlyPrunedSeals: partlyPruned, problems };
    },
  };
}
