// Public shapes of the local record. Plain Node: nothing here knows Electron or HTTP.
import type { ExchangeView } from '../contract/views';
import type { RecoveryInput, RecoveryReport } from './recovery';

export interface StoreOptions {
  /**
   * Where batched exchange/session inserts run: inline on this thread (the default, with background
   * checkpoints, see below) or a worker thread with its own connection. A worker that fails hands
   * its uncommitted writes back and recording continues inline.
   */
  writer?: 'worker' | 'inline';
  /**
   * With the inline writer: copy the WAL back into the database on a small thread of its own
   * (default true; it starts with the first recorded batch). false: SQLite's usual automatic
   * checkpoints on the writing thread.
   */
  backgroundCheckpoints?: boolean;
  /** Test-only: the WAL size past which the inline writer runs a RESTART checkpoint itself (default WAL_LIMIT_BYTES). */
  testWalLimitBytes?: number;
  /** Test-only: make the worker writer fail at start or at its third batch, or the checkpoint thread at start. */
  testWriterFault?: 'start' | 'batch' | 'checkpoint';
  /** How often what was recorded is sealed into the audit chain (seals.ts; default SEAL_EVERY_MS), and rows hashed per turn of the event loop meanwhile. */
  seal?: { everyMs?: number; sliceRows?: number };
  /** Clock used for created/at timestamps (tests inject a fixed one). */
  now?: () => Date;
  /** Where failures of background (batched) writes are reported; default console.error. */
  onError?: (err: unknown) => void;
  /** Queued writes beyond which record() flushes synchronously (bounds memory when the event loop never idles). Default 10 000. */
  maxQueuedWrites?: number;
  /** Called when the database starts or stops refusing the record's writes (see ExchangesRepo.health). */
  onRecordHealth?: (health: RecordHealth) => void;
  /**
   * Test-only: called with the store's own connection once it is open (tests set SQLite's
   * `max_page_count` on it, so that SQLite answers SQLITE_FULL exactly as it does on a full disk).
   */
  testConnection?: (db: import('better-sqlite3').Database) => void;
}

export interface Store {
  readonly file: string;
  agents: AgentsRepo;
  sessions: SessionsRepo;
  exchanges: ExchangesRepo;
  reviews: ReviewsRepo;
  audit: AuditLog;
  /** Values to mask in headers and text bodies of exchanges recorded from now on (e.g. upstream credentials). */
  setSecrets(values: string[]): void;
  /** At start, before the gateway listens: puts right what a gateway that stopped uncleanly left (`recovery.ts`). */
  recover(input: RecoveryInput): RecoveryReport;
  /** Flushes pending batched writes, then closes the database. Idempotent. */
  close(): void;
}

export interface AgentRecord {
  name: string;
  groups: string[];
  createdAt: string;
}

export interface AgentTokenInfo {
  /** SHA-256 hex of the token (the token itself is never stored). */
  hash: string;
  label: string;
  createdAt: string;
  expiresAt: string | null;
}

export interface AgentsRepo {
  /** AirlockError('conflict') if it exists; AirlockError('bad-request') unless the name matches AGENT_NAME_RE. */
  add(name: string, groups: string[]): AgentRecord;
  /** Also deletes its tokens. */
  remove(name: string): boolean;
  get(name: string): AgentRecord | null;
  list(): AgentRecord[];
  /** AirlockError('not-found') for an unknown agent, 'bad-request' for a malformed hash/expiry, 'conflict' for a duplicate hash. */
  addToken(name: string, tokenSha256Hex: string, label: string, expiresAt: string | null): void;
  removeToken(tokenSha256Hex: string): void;
  /** Tokens of one agent (hashes only), oldest first. */
  tokens(name: string): AgentTokenInfo[];
  /** null if unknown agent, unknown token, token of another agent, or expired. */
  /** The agent a token belongs to, with the token's label (`via`); null when unknown or expired. */
  findByToken(name: string, tokenSha256Hex: string, now?: Date): (AgentRecord & { via: string }) | null;
}

export interface SessionRecord {
  id: string;
  agent: string;
  clientAddress: string;
  startedAt: string;
  endedAt: string | null;
  /** The first 12 hex digits of the SHA-256 of the token the agent authenticated with (null: not known). */
  token?: string | null;
  /** That token's label: what it was issued for ("run claude (pid 4242)", "env …"). */
  via?: string | null;
}

export interface SessionSummary extends SessionRecord {
  token: string | null;
  via: string | null;
  /** Exchanges recorded in this session so far. */
  exchangeCount: number;
}

export interface SessionsRepo {
  /** Queued with the exchange batch (no disk I/O on the caller's path). */
  start(s: { id: string; agent: string; clientAddress: string; startedAt: string; token?: string | null; via?: string | null }): void;
  /** Queued with the exchange batch. */
  end(id: string, endedAt: string): void;
  /** Flushes pending writes first. */
  get(id: string): SessionRecord | null;
  /** Newest first; `before` is the id of the last session of the previous page. Flushes first. */
  list(q?: { agent?: string; limit?: number; before?: string }): SessionSummary[];
}

export type HeaderMap = Record<string, string | string[]>;

export interface ExchangeRecord {
  id: string;
  sessionId: string | null;
  agent: string;
  startedAt: string;
  endedAt: string | null;
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
  kind: 'git-push' | 'git-fetch' | 'http-api' | 'other';
  verdict: 'allow' | 'review' | 'deny' | null;
  ruleId: string | null;
  explanation: string | null;
  status: number | null;
  error: string | null;
  requestBytes: number;
  responseBytes: number;
  timings: { connectMs: number | null; tlsMs: number | null; upstreamMs: number | null; totalMs: number | null };
  requestHeaders: HeaderMap;
  responseHeaders: HeaderMap | null;
  /** What was captured (may be a prefix). */
  requestBody: Buffer | null;
  responseBody: Buffer | null;
  /** false when the body was larger than the capture cap. */
  requestBodyComplete: boolean;
  responseBodyComplete: boolean;
  /**
   * SHA-256 (hex) of the whole body as it passed. Recording computes it only when the stored bytes
   * are not the whole body as sent (larger than the cap, or masked); otherwise the column stays
   * NULL and `get` computes it from the stored body, which is then exactly those bytes.
   */
  requestBodySha256: string | null;
  responseBodySha256: string | null;
  reviewId: string | null;
}

/** Filters of the session view; every one is served by an index ending in the exchange id. */
export interface ExchangeFilter {
  agent?: string;
  host?: string;
  kind?: ExchangeRecord['kind'];
  /** The policy decision. */
  verdict?: 'allow' | 'review' | 'deny';
  sessionId?: string;
}

/** Which exchanges an export scans: started in [since, until) (ISO times), of one agent, of one session. */
export interface ExportQuery {
  since?: string;
  until?: string;
  agent?: string;
  sessionId?: string;
}

export interface ExchangesRepo {
  /**
   * A new exchange id: a decimal integer, increasing in the order exchanges start, never reused
   * (reserved from the database in blocks, so two processes on one file never collide).
   */
  nextId(): string;
  /**
   * Queued; written in batches (one transaction per batch, flushed every 100 ms or at 500 rows, and on close).
   * Recording the same id again replaces the earlier row (so a pipeline may record at start and at end),
   * until the row is sealed (seals.ts): a sealed row that changes fails `audit verify`.
   * `rec.id` must come from nextId(). The record is serialised at once, but its body buffers are kept as given until written: do not mutate them afterwards.
   * Returns the path and error as the record holds them (credentials masked), for live views to show
   * the same; null when the record could not be serialised (reported through onError).
   */
  record(rec: ExchangeRecord): { path: string; error: string | null } | null;
  flush(): void;
  /** Newest first (by id). `before` is the id of the last row of the previous page. Flushes first. */
  list(q?: ExchangeFilter & { limit?: number; before?: string }): ExchangeView[];
  /** Flushes first. */
  get(id: string): ExchangeRecord | null;
  /** Flushes first. */
  count(): number;
  /**
   * Every exchange in id (start) order, optionally only those started in [since, until), of one agent
   * or of one session: for exports (a scan, not a page; bodies and headers are not included). Flushes first.
   */
  iterate(q?: ExportQuery): IterableIterator<ExchangeView>;
  /** The same scan with every field, headers and bodies (`get` for each row, in one statement): the HAR export. */
  records(q?: ExportQuery): IterableIterator<ExchangeRecord>;
  /**
   * Seals what is written now into the audit chain (seals.ts): one `exchanges.sealed` event per day of
   * rows, or none when nothing was written since the last seal. The gateway seals every few minutes while
   * it records, at shutdown and before pruning; `audit verify` compares the rows with their seals.
   */
  seal(): void;
  /**
   * Deletes exchanges (and their bodies) started more than N days ago, whole seals at a time (what is
   * written is sealed first; a day's seal goes when all of it is older); appends audit event 'retention.pruned'.
   */
  prune(olderThanDays: number, now?: Date): number;
  /**
   * Keeps at most `maxBytes` of stored bodies (as stored: after compression) from now on. Beyond it the
   * oldest exchanges' bodies are dropped, a few rows per turn of the event loop, down to 90% of the
   * limit; each row keeps every other field, including the SHA-256 and size of its bodies. One audit
   * event 'retention.pruned' (subject 'bodies') per pruning run. Measures what is stored now (one scan).
   */
  limitBodies(maxBytes: number): void;
  /** Bytes of bodies stored, as tracked since limitBodies (null before it). Flushes first. */
  storedBodyBytes(): number | null;
  /** Resolves when no body pruning is under way (tests, shutdown). */
  bodiesPruned(): Promise<void>;
  /**
   * Whether the database takes the record's writes. While it refuses them (disk full, I/O error,
   * read-only file, locked for longer than the busy timeout) the writes are kept in memory, in order,
   * and written again every 2 s; the gateway refuses new requests meanwhile (nothing is forwarded
   * unrecorded). When they are written, audit event 'record.recovered' says how long it lasted.
   */
  health(): RecordHealth;
}

export type RecordHealth =
  | { ok: true }
  | {
    ok: false;
    /** When the database first refused a write of this outage. */
    since: string;
    /** SQLite's error, e.g. "database or disk is full (SQLITE_FULL)". */
    error: string;
    /** Writes kept in memory to be written again. */
    held: number;
    /** Writes beyond the in-memory bound, counted and not kept (their requests were refused, not forwarded). */
    dropped: number;
  };

export type ReviewStateName = 'pending' | 'approved' | 'denied' | 'expired' | 'interrupted';

export interface ReviewRecord {
  id: string;
  exchangeId: string;
  agent: string;
  kind: string;
  host: string;
  repo: string;
  state: ReviewStateName;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  reason: string | null;
  bodySha256: string;
  bodyBytes: number;
  bodyPath: string | null;
  summary: string;
  /** JSON: refs + findings as shown to the reviewer. */
  detail: unknown;
  upstreamStatus: number | null;
  /** What upstream did with the refs, from its report-status: 'ok', or what it refused; null when not known. */
  upstreamResult?: string | null;
}

export type ReviewPatch = Partial<Pick<ReviewRecord, 'state' | 'decidedAt' | 'decidedBy' | 'reason' | 'upstreamStatus' | 'upstreamResult'>>;

export interface ReviewEvent {
  id: number;
  reviewId: string;
  state: ReviewStateName;
  at: string;
  actor: string;
  reason: string | null;
}

export interface ReviewsRepo {
  /** Immediate (not batched). Also appends the first review_events row (state as inserted, actor 'system'). */
  /**
   * With `event` (review.created), the audit event is appended in the same transaction, its details with
   * `shownSha256` added: the SHA-256 of the summary and detail as stored (`reviewShownSha256`), which verify compares.
   */
  insert(r: ReviewRecord, event?: { actor: string; action: string; subject: string; details?: unknown }): void;
  /** Also appends a review_events row. AirlockError('not-found') for an unknown id. */
  /** With `event`, the audit event is appended in the same transaction (both are written, or neither). */
  update(id: string, patch: ReviewPatch, event?: { actor: string; action: string; subject: string; details?: unknown }): void;
  get(id: string): ReviewRecord | null;
  /** Newest first. */
  list(q: { state?: ReviewStateName }): ReviewRecord[];
  /** The review's history, oldest first. */
  events(id: string): ReviewEvent[];
  /** Every 'pending' → 'interrupted' (startup after a crash), one audit event each ('review.interrupted'). */
  markInterrupted(now: Date): ReviewRecord[];
}

export interface AuditEvent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: unknown;
  prevHash: string;
  hash: string;
}

export interface VerifyResult {
  ok: boolean;
  events: number;
  head: string | null;
  /** The first seq whose event or link is wrong; null when the chain holds (a `head` that is missing is not a seq). */
  brokenAt: number | null;
  /** With `VerifyOptions.head`: the seq of the event that has it. */
  headSeq?: number;
  message: string;
  /** The database's verify, once the chain holds: the reviews table compared with the chain's review events. */
  reviews?: ReviewsCheck;
  /** The database's verify, once the chain holds: the exchanges table compared with the chain's seals. */
  exchanges?: ExchangesCheck;
}

/** The `exchanges` rows compared with the chain's `exchanges.sealed` events (`AuditLog.verify`). */
export interface ExchangesCheck {
  seals: number;
  /** Rows read again and found as their seal says. */
  sealedRows: number;
  /** Sessions (agent connections) read again and found as their seal says. */
  sealedSessions: number;
  /** Rows written since the last seal (or in flight when it was made): not covered yet. */
  unsealed: number;
  /** Seals whose rows retention has deleted since: not compared. */
  prunedSeals: number;
  /** Seals of which retention deleted some rows (a row written late into an older range): not compared. */
  partlyPrunedSeals: number;
  /** One line per seal whose rows differ, naming the range and the seal's seq; empty when every seal holds. */
  problems: string[];
}

/** The `reviews` rows compared with their events in the audit chain (`AuditLog.verify`). */
export interface ReviewsCheck {
  /** Rows that have their review.created event, and were compared with it and the events after it. */
  checked: number;
  /** Of those, created before review.created recorded `shownSha256`: their summary and diff are not compared. */
  withoutShown: number;
  /** Of those, decided before decision events recorded `decidedAt`: their decided_at is not compared. */
  withoutDecidedAt: number;
  /** One line per difference, naming the review and the field; empty when the table matches the chain. */
  problems: string[];
}

export interface VerifyOptions {
  /**
   * A head hash kept from an earlier verify or export, outside the log (a ticket, another machine): the log
   * must still hold an event with that hash. A chain verifies on its own even with its end cut off, or
   * rewritten from some event on with every hash recomputed; only a head kept elsewhere shows either.
   */
  head?: string;
}

export interface AuditLog {
  /**
   * Immediate, own transaction (a savepoint when called inside another store transaction); durable once it returns
   * (WAL + synchronous=NORMAL survives a process crash). `at` never goes backwards along the chain.
   */
  append(e: { actor: string; action: string; subject: string; details?: unknown }): AuditEvent;
  /** seq order; `since` keeps events with at >= since. */
  list(q?: { since?: string }): AuditEvent[];
  /**
   * The whole chain, from seq 1; with `head`, also that it still holds that event (see VerifyOptions). Then,
   * once the chain holds, every row of `reviews` against its review.* events (`VerifyResult.reviews`): a
   * difference fails verify, naming the review and the field.
   */
  verify(opts?: VerifyOptions): VerifyResult;
  /**
   * The same verify on a read-only connection of its own, in one read transaction (a snapshot), a slice of
   * exchange rows per turn of the event loop: for a gateway, whose thread also serves the proxy.
   */
  verifyInBackground(opts?: VerifyOptions): Promise<VerifyResult>;
  head(): AuditEvent | null;
}
