// Plain, serializable shapes shared by main, preload and renderer.
// No Node imports here: the renderer bundles this file.

export const EXCHANGE_KINDS = ['git-push', 'git-fetch', 'http-api', 'other'] as const;
export type ExchangeKind = (typeof EXCHANGE_KINDS)[number];
export const VERDICTS = ['allow', 'review', 'deny'] as const;
export type Verdict = (typeof VERDICTS)[number];
export type ReviewState = 'pending' | 'approved' | 'denied' | 'expired' | 'interrupted';

export interface DecisionView {
  verdict: Verdict;
  ruleId: string;
  /** One English sentence: why this verdict. Shown to reviewers and to rejected agents. */
  explanation: string;
}

export interface ExchangeView {
  id: string;
  agent: string;
  sessionId: string | null;
  kind: ExchangeKind;
  method: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  path: string;
  startedAt: string; // ISO time
  endedAt: string | null;
  status: number | null;
  error: string | null;
  requestBytes: number;
  responseBytes: number;
  decision: DecisionView | null;
  reviewId: string | null;
  timings: { totalMs: number | null; upstreamMs: number | null };
}

/** scheme://host[:port]path, the port only when it is not the scheme's default; IPv6 hosts in brackets. */
export function exchangeUrl(x: Pick<ExchangeView, 'scheme' | 'host' | 'port' | 'path'>): string {
  const host = x.host.includes(':') ? `[${x.host}]` : x.host;
  const defaultPort = x.scheme === 'https' ? 443 : 80;
  return `${x.scheme}://${host}${x.port === defaultPort ? '' : `:${x.port}`}${x.path}`;
}

/**
 * Why a body that passed is not in the record, in words (the record does not say which): the capture cap
 * was 0, it was content-encoded in a way the masker could not decode to look for secrets (such a body is
 * never kept), or the body budget dropped it later.
 */
export const BODY_NOT_KEPT = 'capture off, an encoding that could not be checked for secrets, or pruned to stay within bodyStoreBytes';

/** A recorded body as a person reads it (agent-written: render `text` as text, never as HTML). */
export interface BodyView {
  /** Bytes that passed (the whole body as sent). */
  bytes: number;
  /** Bytes the record kept: the whole body, a prefix (capture cap), or 0 (not kept or none). */
  keptBytes: number;
  /** The kept bytes are the whole body. */
  complete: boolean;
  /** SHA-256 (hex) of the whole body as sent; null when there was none. */
  sha256: string | null;
  /** 'none': nothing kept; 'binary': not text; 'text': `text` holds it (decoded, indented, cut). */
  kind: 'none' | 'binary' | 'text';
  text: string | null;
  /** What was done for display, in words ('' when nothing): "gzip-decoded for display", … */
  note: string;
  /** Bytes of text left out after `text` (the display limit); 0 when all is shown. */
  moreBytes: number;
}

/** One exchange in full: the list row plus headers, bodies and every timing. */
export interface ExchangeDetailView extends Omit<ExchangeView, 'timings'> {
  timings: { connectMs: number | null; tlsMs: number | null; upstreamMs: number | null; totalMs: number | null };
  /** Header name → value(s), as recorded (credentials masked). */
  requestHeaders: Record<string, string | string[]>;
  /** null when no response came. */
  responseHeaders: Record<string, string | string[]> | null;
  requestBody: BodyView;
  responseBody: BodyView;
}

/** One agent connection (a CONNECT tunnel, or an agent's plain-HTTP requests on one socket). */
export interface SessionView {
  id: string;
  agent: string;
  /** The agent's address as the proxy saw it (e.g. 127.0.0.1). */
  clientAddress: string;
  startedAt: string; // ISO time
  /** null while the connection is open (or when Airlock stopped before it closed). */
  endedAt: string | null;
  /** The first 12 hex digits of the SHA-256 of the agent's token (the audit log's agent.token-issued names it too). */
  token: string | null;
  /** What that token was issued for, e.g. "run claude (pid 4242)"; null for sessions recorded before Airlock kept it. */
  via: string | null;
  /** Exchanges recorded in this session so far. */
  exchangeCount: number;
}

export type RefChange = 'create' | 'update' | 'fast-forward' | 'forced' | 'delete';

export interface CommitView {
  oid: string;
  author: string;
  authorDate: string;
  committer: string;
  message: string;
}

export type FileStatus = 'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'mode-change' | 'type-change';

export interface FileDiffView {
  path: string;
  oldPath: string | null;
  status: FileStatus;
  binary: boolean;
  oldSize: number | null;
  newSize: number | null;
  oldMode: string | null;
  newMode: string | null;
  additions: number;
  deletions: number;
  /** Unified diff text of this file (hunks only), possibly truncated; see `omitted`. */
  patch: string;
  /** Set when part of this file's patch was left out of the display, saying what. */
  omitted: string | null;
}

export interface RefUpdateView {
  ref: string;
  oldOid: string;
  newOid: string;
  change: RefChange;
  commits: CommitView[];
  /** What the diff is taken against, in words ("origin/main merge-base", "empty tree", ...). */
  base: string;
  files: FileDiffView[];
  /** Files or commits left out of the display, in words; null when nothing was omitted. */
  omitted: string | null;
}

export interface FindingView {
  severity: 'info' | 'warning' | 'critical';
  rule: string;
  message: string;
  path: string | null;
  line: number | null;
}

export interface ReviewView {
  id: string;
  exchangeId: string;
  agent: string;
  kind: ExchangeKind;
  host: string;
  repo: string;
  state: ReviewState;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  reason: string | null;
  /** SHA-256 (hex) of the exact body bytes that will be forwarded on approval. */
  bodySha256: string;
  bodyBytes: number;
  refs: RefUpdateView[];
  findings: FindingView[];
  /** Upstream's answer after forwarding (approved reviews only). */
  upstreamStatus: number | null;
  /**
   * What upstream did with the refs, read from its answer: 'ok' (every ref updated), or a sentence
   * saying what it refused (an HTTP 200 can refuse every ref: a branch moved meanwhile), or why
   * nothing is known; null before forwarding or when the answer carried no report.
   */
  upstreamResult: string | null;
  summary: string;
}

export interface AgentView {
  name: string;
  groups: string[];
  createdAt: string;
}

export interface StatusView {
  version: string;
  proxyUrl: string;
  consoleUrl: string | null;
  caPath: string;
  dataDir: string;
  startedAt: string;
  counts: { exchanges: number; pendingReviews: number };
  /**
   * 'on': every exchange is recorded. 'off': recording is turned off (`record: false`).
   * 'failing': the database refuses writes (disk full, say); requests are refused until it takes
   * them again, and what was recorded meanwhile is held in memory (`held` writes) and then written.
   */
  recording: { state: 'on' | 'off' } | { state: 'failing'; since: string; error: string; held: number };
  /**
   * Free space on the disk that holds the record (null when it cannot be read); `low` below the
   * `recordDiskWarnBytes` setting: on a full disk every request is refused.
   */
  disk: { freeBytes: number; low: boolean } | null;
  /** The proxy Airlock's upstream connections go through (`host:port`, never its credentials) and the hosts reached directly; null: direct. */
  upstreamProxy: { proxy: string; noProxy: string[] } | null;
}

export interface AuditVerifyView {
  ok: boolean;
  events: number;
  head: string | null;
  /** First broken sequence number when the chain itself is broken (null when only a kept head is missing). */
  brokenAt: number | null;
  /** With a kept head: the seq of the event that has it (null when none was given or it is missing). */
  headSeq: number | null;
  message: string;
}

/** Exchanges as a HAR 1.2 file (`exportHar`), for the UI to save; audited as `exchanges.exported`. */
export interface HarExportView {
  /** A file name to offer: `airlock-<what>-<time>.har`, letters, digits, `-` and `.` only. */
  fileName: string;
  /** The HAR (JSON). Agent-written text inside it is data: never render it as HTML. */
  text: string;
  /** Exchanges in it. */
  count: number;
  /** Its size in bytes (UTF-8). */
  bytes: number;
  /** SHA-256 (hex) of those bytes, as the audit event records it (`airlock audit verify --export FILE`). */
  sha256: string;
}

/** Everything the main side pushes to UIs, on one channel. */
export type AirlockEvent =
  | { type: 'exchange'; exchange: ExchangeView }
  | { type: 'review'; review: ReviewView }
  | { type: 'status'; status: StatusView }
  /** The event stream was cut and is back (the gateway restarted, or cut a client that stopped reading): events may have been missed, so reload. */
  | { type: 'resync' };

const MODE_KIND: Record<string, string> = { '120000': 'symlink', '160000': 'submodule', '100755': 'executable' };

/**
 * What a file's mode says, when it says more than "an ordinary file": a mode change, or a new or kept
 * symlink, submodule or executable ("new symlink (120000)", "100644 → 100755 (executable)"). A symlink's
 * "content" in the diff is the path it points to; the reviewer must know it is one. Null for 100644.
 */
export function modeNote(f: Pick<FileDiffView, 'oldMode' | 'newMode' | 'status'>): string | null {
  const { oldMode, newMode } = f;
  if (oldMode && newMode && oldMode !== newMode) return `${oldMode} → ${newMode}${MODE_KIND[newMode] ? ` (${MODE_KIND[newMode]})` : ''}`;
  const mode = newMode ?? oldMode;
  if (!mode || mode === '100644') return null;
  const kind = MODE_KIND[mode] ?? `mode ${mode}`;
  return f.status === 'added' ? `new ${kind} (${mode})` : f.status === 'deleted' ? `deleted ${kind} (${mode})` : `${kind} (${mode})`;
}

/** A length of time as the console and the CLI show it: `45s`, `14m 34s`, `3h 05m`, `4d` (rounded down). */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d`;
}

/** How a held push's review ended, as its exchange records it; null when the record does not say. */
export type HeldOutcome = 'approved' | 'denied' | 'expired' | 'interrupted';

/**
 * From the exchange alone (no review at hand): a push that did not go through says so in its error
 * (`review #N denied by …`, set when it is recorded); one forwarded without trouble has no error and the
 * held bytes counted. A record from before Airlock wrote the outcome counts no bytes for a push it
 * did not forward: its outcome is not told (null), not guessed.
 */
export function heldOutcome(x: Pick<ExchangeView, 'reviewId' | 'error' | 'requestBytes'>): HeldOutcome | null {
  if (!x.reviewId) return null;
  const m = /^review #\S+ (approved|denied|expired|interrupted)\b/.exec(x.error ?? '');
  if (m) return m[1] as HeldOutcome;
  return !x.error && x.requestBytes > 0 ? 'approved' : null;
}
