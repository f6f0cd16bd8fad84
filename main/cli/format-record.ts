// Tables of the local record for `airlock sessions` and `airlock exchanges`.
// Everything an agent could have written (paths, hosts, addresses) goes through `plain()` first:
// a terminal must never receive an agent's escape sequences.
import type { ExchangeView, SessionView } from '../contract/views';

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
  return JSON.stringify(value).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
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

/** scheme://host[:port]path, the port only when it is not the scheme's default; IPv6 hosts in brackets. */
export function exchangeUrl(x: Pick<ExchangeView, 'scheme' | 'host' | 'port' | 'path'>): string {
  const host = x.host.includes(':') ? `[${x.host}]` : x.host;
  const defaultPort = x.scheme === 'https' ? 443 : 80;
  return `${x.scheme}://${host}${x.port === defaultPort ? '' : `:${x.port}`}${x.path}`;
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

const EXCHANGE_COLUMNS: Column<ExchangeView>[] = [
  { title: 'ID', value: (x) => plain(x.id), right: true },
  { title: 'TIME', value: (x) => shortTime(x.startedAt) },
  { title: 'AGENT', value: (x) => plain(x.agent) },
  { title: 'METHOD', value: (x) => plain(x.method) },
  // Truncate after escaping, so an escape sequence can never be cut into something live.
  { title: 'URL', value: (x) => truncateMiddle(plain(exchangeUrl(x)), URL_WIDTH) },
  { title: 'KIND', value: (x) => plain(x.kind) },
  { title: 'DECISION', value: (x) => (x.decision ? plain(x.decision.verdict) : '-') },
  { title: 'STATUS', value: statusText, right: true },
  { title: 'BYTES', value: (x) => `${shortBytes(x.requestBytes)}/${shortBytes(x.responseBytes)}`, right: true },
  { title: 'MS', value: (x) => (x.timings.totalMs === null ? '-' : String(Math.round(x.timings.totalMs))), right: true },
];

/** `airlock exchanges`: one row per exchange, as given (newest first). BYTES is request/response. */
export function exchangesTable(exchanges: ExchangeView[]): string {
  return table(exchanges, EXCHANGE_COLUMNS);
}
