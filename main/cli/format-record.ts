// The local record for `airlock sessions`, `airlock exchanges` and `airlock exchange ID`.
// Everything an agent could have written (paths, hosts, addresses) goes through `plain()` first:
// a terminal must never receive an agent's escape sequences.
import { BODY_NOT_KEPT, exchangeUrl, heldOutcome, type ExchangeView, type SessionView } from '../contract/views';

export { exchangeUrl };
import type { ExchangeRecord, HeaderMap } from '../store/types';
import { displayBody, keptWithReview } from '../store/body-display';

// C0 and C1 controls, DEL, and the invisible format characters that reorder or hide text
// (bidi embeddings/overrides/isolates, zero-width characters, line/paragraph separators, BOM).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

function escapeChar(c: string): string {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** Text safe to print on a terminal: every control or invisible format character is shown as `\xNN` / `\uNNNN`. */
export function plain(s: string | null | undefined): string {
  return String(s ?? '').replace(UNSAFE, escapeChar);
}

/**
 * JSON for stdout: JSON.stringify escapes C0 controls but not C1 (U+009B is a terminal's CSI) nor bidi
 * controls; those are written as `\uNNNN` escapes too, so the text is still valid JSON that parses to the same value.
 */
export function safeJson(value: unknown): string {
  return escapeJsonText(JSON.stringify(value));
}

/** JSON text with the characters `plain()` escapes written as `\uNNNN` (valid JSON, the same value). */
export function escapeJsonText(json: string): string {
  return json.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `2026-11-24T08:51:29Z` (UTC, seconds), or the text as given when it is not a time. */
export function shortTime(iso: string | null): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? plain(iso) : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** 512, 2.0K, 3.4M, 1.2G (binary units). */
export function shortBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  if (n < 1024) return String(n);
  const units = ['K', 'M', 'G', 'T'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)}${units[i]}`;
}

/** At most `max` characters: the start (origin and the first path segments) and the end (often the query), `…` between. */
export function truncateMiddle(s: string, max: number): string {
  const chars = Array.from(s);
  if (chars.length <= max) return s;
  const tail = Math.floor((max - 1) / 3);
  const head = max - 1 - tail;
  return chars.slice(0, head).join('') + '…' + chars.slice(chars.length - tail).join('');
}

export const URL_WIDTH = 64;

interface Column<T> {
  title: string;
  value: (row: T) => string;
  right?: boolean;
}

/** Columns separated by two spaces; numbers right-aligned. No trailing spaces. */
function table<T>(rows: T[], columns: Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => Array.from(row[i]!).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const pad = ' '.repeat(widths[i]! - Array.from(v).length);
        return columns[i]!.right ? pad + v : v + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n') + '\n';
}

const SESSION_COLUMNS: Column<SessionView>[] = [
  { title: 'SESSION', value: (s) => plain(s.id) },
  { title: 'AGENT', value: (s) => plain(s.agent) },
  { title: 'CLIENT', value: (s) => plain(s.clientAddress) },
  { title: 'STARTED', value: (s) => shortTime(s.startedAt) },
  { title: 'ENDED', value: (s) => (s.endedAt ? shortTime(s.endedAt) : 'open') },
  { title: 'EXCHANGES', value: (s) => String(s.exchangeCount), right: true },
  // The token's label (the audit log's agent.token-issued names the same token): which run made it.
  { title: 'VIA', value: (s) => (s.via ? truncateMiddle(plain(s.via), 40) : '-') },
];

/** `airlock sessions`: one row per session, as given (newest first). */
export function sessionsTable(sessions: SessionView[]): string {
  return table(sessions, SESSION_COLUMNS);
}

function statusText(x: ExchangeView): string {
  if (x.status !== null) return String(x.status);
  if (x.error) return 'error';
  return x.endedAt ? '-' : 'open';
}

// heldOutcome lives with the views (main/contract/views.ts): the console's Activity view reads it too.
export { heldOutcome, type HeldOutcome } from '../contract/views';

/** The DECISION column: the policy's verdict, or for a held push its review and how it ended (`review #3 denied`). */
function decisionText(x: ExchangeView): string {
  if (x.reviewId) {
    const outcome = heldOutcome(x);
    return `review #${plain(x.reviewId)}${outcome ? ` ${outcome}` : ''}`;
  }
  return x.decision ? plain(x.decision.verdict) : '-';
}

const EXCHANGE_COLUMNS: Column<ExchangeView>[] = [
  { title: 'ID', value: (x) => plain(x.id), right: true },
  { title: 'TIME', value: (x) => shortTime(x.startedAt) },
  { title: 'AGENT', value: (x) => plain(x.agent) },
  { title: 'METHOD', value: (x) => plain(x.method) },
  // Truncate after escaping, so an escape sequence can never be cut into something live.
  { title: 'URL', value: (x) => truncateMiddle(plain(exchangeUrl(x)), URL_WIDTH) },
  { title: 'KIND', value: (x) => plain(x.kind) },
  { title: 'DECISION', value: decisionText },
  { title: 'STATUS', value: statusText, right: true },
  { title: 'BYTES', value: (x) => `${shortBytes(x.requestBytes)}/${shortBytes(x.responseBytes)}`, right: true },
  { title: 'MS', value: (x) => (x.timings.totalMs === null ? '-' : String(Math.round(x.timings.totalMs))), right: true },
];

/** `airlock exchanges`: one row per exchange, as given (newest first). BYTES is request/response. */
export function exchangesTable(exchanges: ExchangeView[]): string {
  return table(exchanges, EXCHANGE_COLUMNS);
}

/**
 * `airlock exchanges --follow` prints rows as they come, so the columns cannot be sized from the rows:
 * these widths fit the usual values (a longer one pushes the rest of its line right).
 */
const FOLLOW_WIDTHS = [7, 20, 12, 7, URL_WIDTH, 9, 10, 6, 11, 6];

function fixedLine(values: string[]): string {
  return values
    .map((v, i) => {
      const pad = ' '.repeat(Math.max(0, FOLLOW_WIDTHS[i]! - Array.from(v).length));
      return EXCHANGE_COLUMNS[i]!.right ? pad + v : v + pad;
    })
    .join('  ')
    .trimEnd();
}

/** The header of `airlock exchanges --follow` (the same columns as `airlock exchanges`). */
export function exchangeFollowHeader(): string {
  return fixedLine(EXCHANGE_COLUMNS.map((c) => c.title)) + '\n';
}

/** One row of `airlock exchanges --follow`. */
export function exchangeFollowLine(x: ExchangeView): string {
  return fixedLine(EXCHANGE_COLUMNS.map((c) => c.value(x))) + '\n';
}

// ---------------------------------------------------------------- one exchange in full

/** Most text of one body `airlock exchange ID` prints; `--body` writes all of it. */
export const BODY_DISPLAY_BYTES = 64 * 1024;

type Detail = Pick<ExchangeRecord, 'id' | 'sessionId' | 'agent' | 'startedAt' | 'endedAt' | 'method' | 'scheme' | 'host' | 'port' | 'path' | 'kind'
  | 'verdict' | 'ruleId' | 'explanation' | 'status' | 'error' | 'requestBytes' | 'responseBytes' | 'timings' | 'requestHeaders' | 'responseHeaders'
  | 'requestBody' | 'responseBody' | 'requestBodyComplete' | 'responseBodyComplete' | 'requestBodySha256' | 'responseBodySha256' | 'reviewId'>;

function ms(n: number | null): string {
  return n === null ? '-' : `${Math.round(n)} ms`;
}

function headerLines(h: HeaderMap | null): string[] {
  if (!h) return ['  (no response)'];
  const lines: string[] = [];
  for (const [k, v] of Object.entries(h)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`  ${plain(k)}: ${plain(one)}`);
  return lines.length ? lines : ['  (none)'];
}

/** Where a held push's exact bytes are kept (the review references them; the record never copies them). */
export function heldBodyPath(sha256: string, dataDir?: string | null): string {
  return `${dataDir ? dataDir.replace(/[\\/]+$/, '') : '<data-dir>'}/pushes/${sha256}.body`;
}


function exactBytes(n: number): string {
  return n < 1024 ? `${n} bytes` : `${shortBytes(n)} (${n} bytes)`;
}

function bodyLines(which: 'request' | 'response', id: string, body: Buffer | null, bytes: number, complete: boolean, sha: string | null, headers: HeaderMap | null,
  held: { reviewId: string; sha256: string; dataDir?: string | null } | null = null): string[] {
  const arrow = which === 'request' ? '>' : '<';
  const hash = sha ? `, sha256 ${sha}` : '';
  if (held) {
    const r = plain(held.reviewId);
    return [`${arrow} ${which} body: ${exactBytes(bytes)}, kept with review #${r} (airlock show ${r}; ${plain(heldBodyPath(held.sha256, held.dataDir))})`];
  }
  if (!body || body.length === 0) {
    if (bytes === 0) return [`${arrow} ${which} body: none`];
    return [`${arrow} ${which} body: ${shortBytes(bytes)} sent, not kept (${BODY_NOT_KEPT})${hash}`];
  }
  const kept = complete ? `${shortBytes(bytes)}` : `first ${shortBytes(body.length)} of ${shortBytes(bytes)} kept (bodyCaptureBytes)`;
  const shown = displayBody(body, headers, complete, BODY_DISPLAY_BYTES);
  const note = shown.note ? ` (${shown.note})` : '';
  const save = `\`airlock exchange ${id} --body ${which} > FILE\``;
  if (shown.kind !== 'text') return [`${arrow} ${which} body: ${kept}, binary${note}${hash}; ${save} writes it`];
  const lines = [`${arrow} ${which} body: ${kept}${note}${hash}`];
  // Tabs stay; every other control character is escaped, line by line.
  for (const line of shown.text!.split(/\r?\n/)) lines.push(`  ${plain(line.replace(/\t/g, '    '))}`);
  if (shown.moreBytes > 0) lines.push(`  … ${shortBytes(shown.moreBytes)} more; ${save} writes all of it`);
  return lines;
}

function reviewOutcome(x: Detail): string {
  const o = heldOutcome(x);
  return o ? ` ${o}` : '';
}

/**
 * `airlock exchange ID --body request` of a held push: the file its bytes are kept in (under
 * `<dataDir>/pushes/`, named by their SHA-256), or why there is none: `pruned` when the file is gone
 * (pushes/ is pruned after retentionDays), with the sentence to say. null for any other body.
 */
export function heldBodyFile(x: Pick<Detail, 'id' | 'reviewId' | 'requestBody' | 'requestBytes' | 'requestBodySha256'>, which: 'request' | 'response', dataDir: string,
  exists: (path: string) => boolean): { path: string } | { pruned: string } | null {
  const held = which === 'request' ? keptWithReview(x) : null;
  if (!held) return null;
  const path = heldBodyPath(held.sha256, dataDir);
  if (exists(path)) return { path };
  return { pruned: `the request body of exchange ${x.id} (${x.requestBytes} bytes, sha256 ${held.sha256}) was kept with review #${held.reviewId} as ${path}, which is gone (pushes are pruned after retentionDays)` };
}

/**
 * `airlock exchange ID`: every recorded field of one exchange, its headers and (text) bodies. `dataDir`
 * (when known) names where a held push's bytes are kept in full.
 */
export function exchangeDetail(x: Detail, opts: { dataDir?: string | null } = {}): string {
  const held = keptWithReview(x);
  const t = x.timings;
  const decision = x.verdict ? `${plain(x.verdict)} (${plain(x.ruleId ?? '')}${x.explanation ? `: ${plain(x.explanation)}` : ''})` : '-';
  const lines = [
    `exchange ${plain(x.id)}`,
    `  time      ${shortTime(x.startedAt)} to ${shortTime(x.endedAt)}`,
    `  agent     ${plain(x.agent)}   session ${plain(x.sessionId ?? '-')}`,
    `  request   ${plain(x.method)} ${plain(exchangeUrl(x))}`,
    `  kind      ${plain(x.kind)}`,
    `  decision  ${decision}`,
    `  status    ${x.status ?? '-'}${x.error ? `   error: ${plain(x.error)}` : ''}`,
    ...(x.reviewId ? [`  review    #${plain(x.reviewId)}${reviewOutcome(x)} (airlock show ${plain(x.reviewId)})`] : []),
    `  bytes     ${x.requestBytes} sent, ${x.responseBytes} received`,
    `  timings   connect ${ms(t.connectMs)}, TLS ${ms(t.tlsMs)}, upstream ${ms(t.upstreamMs)}, total ${ms(t.totalMs)}`,
    '',
    '> request headers',
    ...headerLines(x.requestHeaders),
    ...bodyLines('request', x.id, x.requestBody, x.requestBytes, x.requestBodyComplete, x.requestBodySha256, x.requestHeaders,
      held ? { ...held, dataDir: opts.dataDir } : null),
    '',
    '< response headers',
    ...headerLines(x.responseHeaders),
    ...bodyLines('response', x.id, x.responseBody, x.responseBytes, x.responseBodyComplete, x.responseBodySha256, x.responseHeaders),
  ];
  return lines.join('\n') + '\n';
}

/** `airlock exchange ID --json`: the same record; bodies as base64 (null when not kept). */
export function exchangeJson(x: Detail): string {
  return safeJson({
    ...x,
    requestBody: x.requestBody ? x.requestBody.toString('base64') : null,
    responseBody: x.responseBody ? x.responseBody.toString('base64') : null,
  });
}

// ---------------------------------------------------------------- exports

export const EXCHANGE_CSV_HEADER =
  'id,started_at,ended_at,agent,session_id,method,url,kind,verdict,rule_id,status,error,request_bytes,response_bytes,total_ms,review_id';

/**
 * One CSV cell (RFC 4180). Text that a spreadsheet would run as a formula (= + - @, tab, CR first)
 * gets a leading apostrophe: an agent writes paths and errors, an auditor opens the file.
 */
export function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `airlock exchanges export --format csv`: one line per exchange (CRLF). */
export function exchangeCsvRow(x: ExchangeView): string {
  return [
    x.id, x.startedAt, x.endedAt, x.agent, x.sessionId, x.method, exchangeUrl(x), x.kind, x.decision?.verdict ?? null,
    x.decision?.ruleId ?? null, x.status, x.error, x.requestBytes, x.responseBytes, x.timings.totalMs, x.reviewId,
  ].map(csvCell).join(',') + '\r\n';
}
