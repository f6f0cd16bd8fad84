// The record as HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), the format browsers' developer
// tools, HTTP Toolkit, Charles, Fiddler, mitmproxy and Playwright read: `airlock exchanges export --format har`.
// Plain data, written as it is read: `HarWriter` returns the file in pieces (the head, one entry per
// exchange, the tail), so an export of any size never holds more than one exchange in memory.
//
// What a HAR viewer gets from Airlock's record:
// - every exchange as an entry, in start order; each agent session (one client connection) as a page, so
//   viewers group an agent's requests by connection;
// - headers and bodies as recorded: credentials already masked, bodies up to the capture cap. A response's
//   content-encoding (gzip, deflate, br) is removed, as HAR asks (`content.size` is then the decoded size,
//   `compression` what the encoding saved); text bodies as text, anything else (or anything not valid UTF-8)
//   as base64, so a replay gives back the exact bytes;
// - what HAR has no field for in `_airlock` (custom fields start with `_`): the exchange id, agent, kind,
//   the policy decision and its rule, the review, Airlock's error, and for each body its size, what was
//   kept and its SHA-256; `comment` says the same in words.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { BODY_NOT_KEPT, exchangeUrl, heldOutcome } from '../contract/views';
import { decodeContent, keptWithReview } from './body-display';
import { readExchangeRecords, readSession } from './exchanges';
import { sqlite } from './sqlite';
import type { Entry as SpecEntry, Page as SpecPage } from 'har-format';
import type { ExchangeRecord, ExportQuery, HeaderMap, SessionRecord } from './types';

export type HarNameValue = {
  name: string;
  value: string;
};

export type HarContent = {
  size: number;
  compression?: number;
  mimeType: string;
  text?: string;
  encoding?: 'base64';
  comment?: string;
};

/** The log's comment: what the file holds (the query), when and through what it was exported, and what was masked. */
export function harComment(q: ExportQuery, exportedAt: Date, via?: string): string {
  const filters = [
    q.agent !== undefined ? `agent ${q.agent}` : null, q.sessionId !== undefined ? `session ${q.sessionId}` : null,
    q.since ? `since ${q.since}` : null, q.until ? `until ${q.until}` : null,
  ].filter(Boolean);
  return `Airlock's record of agent traffic${filters.length ? ` (${filters.join(', ')})` : ''}, exported ${exportedAt.toISOString()}${via ? ` from the ${via}` : ''}: `
    + 'credentials are masked as they were recorded; bodies are kept up to the capture cap; each session (agent connection) is a page; '
    + '_airlock holds the exchange id, policy decision and review.';
}

export type HarBodyInfo = {
  /** Bytes that passed (the body as sent, content-encoded if the sender encoded it). */
  bytes: number;
  /** Bytes the record kept (a prefix when the body was larger than the capture cap; 0 when not kept). */
  keptBytes: number;
  complete: boolean;
  sha256: string | null;
};

export type HarEntry = {
  pageref?: string;
  startedDateTime: string;
  time: number;
  request: {
    method: string;
    url: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    queryString: HarNameValue[];
    postData?: { mimeType: string; text: string; comment?: string; _encoding?: 'base64' };
    headersSize: number;
    bodySize: number;
  };
  response: {
    status: number;
    statusText: string;
    httpVersion: string;
    cookies: HarNameValue[];
    headers: HarNameValue[];
    content: HarContent;
    redirectURL: string;
    headersSize: number;
    bodySize: number;
  };
  cache: Record<string, never>;
  timings: { blocked: number; dns: number; connect: number; ssl: number; send: number; wait: number; receive: number };
  connection?: string;
  comment: string;
  _airlock: {
    id: string;
    agent: string;
    sessionId: string | null;
    kind: ExchangeRecord['kind'];
    endedAt: string | null;
    decision: { verdict: NonNullable<ExchangeRecord['verdict']>; ruleId: string | null; explanation: string | null } | null;
    reviewId: string | null;
    /** How a held push's review ended, as the exchange records it (null: no review, or not told). */
    reviewOutcome: ReturnType<typeof heldOutcome>;
    error: string | null;
    requestBody: HarBodyInfo & { keptWithReview?: string };
    responseBody: HarBodyInfo;
  };
};

export type HarPage = {
  startedDateTime: string;
  id: string;
  title: string;
  pageTimings: Record<string, never>;
  comment?: string;
  _airlock: { agent: string; clientAddress: string | null; endedAt: string | null; via: string | null; token: string | null };
};

function headerList(h: HeaderMap | null): HarNameValue[] {
  if (!h) return [];
  const list: HarNameValue[] = [];
  for (const [name, v] of Object.entries(h)) for (const value of Array.isArray(v) ? v : [v]) list.push({ name, value: String(value) });
  return list;
}

function header(h: HeaderMap | null, name: string): string | null {
  const v = h?.[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : String(v);
}

/** `a=1; b=2` (request) or one `Set-Cookie` value each (response): name and value only, as recorded (masked). */
function cookies(h: HeaderMap | null, name: 'cookie' | 'set-cookie'): HarNameValue[] {
  const v = h?.[name];
  if (v === undefined) return [];
  const values = Array.isArray(v) ? v : [String(v)];
  const pairs = name === 'cookie' ? values.flatMap((c) => c.split(';')) : values.map((c) => c.split(';')[0] ?? '');
  return pairs.map((p) => p.trim()).filter(Boolean).map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? { name: '', value: p } : { name: p.slice(0, eq).trim(), value: p.slice(eq + 1).trim() };
  });
}

function queryString(path: string): HarNameValue[] {
  const q = path.indexOf('?');
  if (q < 0) return [];
  const list: HarNameValue[] = [];
  try {
    for (const [name, value] of new URLSearchParams(path.slice(q + 1).split('#')[0])) list.push({ name, value });
  } catch { /* a query URLSearchParams cannot read: the URL still carries it */ }
  return list;
}

/** Text when the bytes are UTF-8 (a replay then gives back the same bytes), base64 otherwise. */
function textOrBase64(b: Buffer): { text: string; base64: boolean } {
  return isUtf8(b) ? { text: b.toString('utf8'), base64: false } : { text: b.toString('base64'), base64: true };
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? '' : 's'}`;
}

function responseContent(x: ExchangeRecord): HarContent {
  const mimeType = header(x.responseHeaders, 'content-type') ?? 'x-unknown';
  const body = x.responseBody;
  if (!body || body.length === 0) {
    if (x.responseBytes === 0) return { size: 0, mimeType };
    return { size: x.responseBytes, mimeType, comment: `${plural(x.responseBytes, 'byte')} received, not kept (${BODY_NOT_KEPT})` };
  }
  const { bytes, note } = decodeContent(body, x.responseHeaders, x.responseBodyComplete);
  const { text, base64 } = textOrBase64(bytes);
  const content: HarContent = { size: bytes.length, mimeType, text };
  if (base64) content.encoding = 'base64';
  const comments: string[] = [];
  if (bytes !== body) content.compression = bytes.length - body.length;
  else if (note) comments.push(note);
  if (!x.responseBodyComplete) comments.push(`first ${plural(body.length, 'byte')} of ${x.responseBytes} kept (bodyCaptureBytes)`);
  if (comments.length) content.comment = comments.join('; ');
  return content;
}

function requestPostData(x: ExchangeRecord, keptWith: { reviewId: string; sha256: string } | null): HarEntry['request']['postData'] {
  const mimeType = header(x.requestHeaders, 'content-type') ?? 'application/octet-stream';
  if (keptWith) {
    return { mimeType, text: '', comment: `${plural(x.requestBytes, 'byte')} (SHA-256 ${keptWith.sha256}), kept with review #${keptWith.reviewId}: airlock exchange ${x.id} --body request` };
  }
  const body = x.requestBody;
  if (!body || body.length === 0) {
    if (x.requestBytes === 0) return undefined;
    return { mimeType, text: '', comment: `${plural(x.requestBytes, 'byte')} sent, not kept (${BODY_NOT_KEPT})` };
  }
  // A request body stays as it was sent (HAR has no field for a request's content-encoding).
  const { text, base64 } = textOrBase64(body);
  const post: NonNullable<HarEntry['request']['postData']> = { mimeType, text };
  if (base64) post._encoding = 'base64';
  if (!x.requestBodyComplete) post.comment = `first ${plural(body.length, 'byte')} of ${x.requestBytes} kept (bodyCaptureBytes)`;
  return post;
}

const ms = (n: number | null | undefined): number => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : -1);

/**
 * HAR's phases from what the record measures: `connect` and `ssl` for an exchange that opened its upstream
 * connection (-1 on a reused one), `wait` until upstream's response head. HAR has no phase for the time
 * Airlock itself takes (policy, or a held push waiting for its review): for an exchange with a review it
 * is `blocked`; otherwise the rest of the total is `receive`. `send` is not measured (0). The phases add
 * up to `time`, the exchange's total.
 */
function timings(x: ExchangeRecord): { time: number; timings: HarEntry['timings'] } {
  const t = x.timings;
  // Microseconds at most (what the gateway measures), so that sums of phases do not drift below zero.
  const us = (n: number): number => Math.round(n * 1000) / 1000;
  const tls = ms(t.tlsMs) < 0 ? -1 : us(ms(t.tlsMs));
  const tcp = ms(t.connectMs);
  const connect = tcp < 0 && tls < 0 ? -1 : us(Math.max(tcp, 0) + Math.max(tls, 0));
  const wait = us(Math.max(ms(t.upstreamMs), 0));
  const total = ms(t.totalMs);
  const rest = total < 0 ? 0 : Math.max(0, us(total - Math.max(connect, 0) - wait));
  const time = us(Math.max(connect, 0) + wait + rest);
  const held = x.reviewId !== null;
  return {
    time,
    timings: { blocked: held ? rest : -1, dns: -1, connect, ssl: tls, send: 0, wait, receive: held ? 0 : rest },
  };
}

function decisionComment(x: ExchangeRecord): string {
  const parts: string[] = [`${x.agent}: ${x.kind}`];
  if (x.verdict) parts.push(`${x.verdict}${x.ruleId ? ` by ${x.ruleId}` : ''}${x.explanation ? ` (${x.explanation})` : ''}`);
  if (x.reviewId) {
    const outcome = heldOutcome(x);
    parts.push(`review #${x.reviewId}${outcome ? ` ${outcome}` : ''}`);
  }
  if (x.error) parts.push(`error: ${x.error}`);
  if (x.status === null) parts.push('no response');
  return parts.join('; ');
}

export function harEntry(x: ExchangeRecord): HarEntry {
  const keptWith = keptWithReview(x);
  const { time, timings: phases } = timings(x);
  const postData = requestPostData(x, keptWith);
  const entry: HarEntry = {
    ...(x.sessionId ? { pageref: x.sessionId } : {}),
    startedDateTime: x.startedAt,
    time,
    request: {
      method: x.method,
      url: exchangeUrl(x),
      httpVersion: 'HTTP/1.1',
      cookies: cookies(x.requestHeaders, 'cookie'),
      headers: headerList(x.requestHeaders),
      queryString: queryString(x.path),
      ...(postData ? { postData } : {}),
      headersSize: -1,
      bodySize: x.requestBytes,
    },
    response: {
      status: x.status ?? 0,
      statusText: x.status === null ? '' : (STATUS_CODES[x.status] ?? ''),
      httpVersion: x.responseHeaders ? 'HTTP/1.1' : '',
      cookies: cookies(x.responseHeaders, 'set-cookie'),
      headers: headerList(x.responseHeaders),
      content: responseContent(x),
      redirectURL: header(x.responseHeaders, 'location') ?? '',
      headersSize: -1,
      bodySize: x.responseHeaders ? x.responseBytes : -1,
    },
    cache: {},
    timings: phases,
    ...(x.sessionId ? { connection: x.sessionId } : {}),
    comment: decisionComment(x),
    _airlock: {
      id: x.id,
      agent: x.agent,
      sessionId: x.sessionId,
      kind: x.kind,
      endedAt: x.endedAt,
      decision: x.verdict ? { verdict: x.verdict, ruleId: x.ruleId, explanation: x.explanation } : null,
      reviewId: x.reviewId,
      reviewOutcome: heldOutcome(x),
      error: x.error,
      requestBody: {
        bytes: x.requestBytes, keptBytes: x.requestBody?.length ?? 0, complete: x.requestBodyComplete, sha256: x.requestBodySha256,
        ...(keptWith ? { keptWithReview: keptWith.reviewId } : {}),
      },
      responseBody: { bytes: x.responseBytes, keptBytes: x.responseBody?.length ?? 0, complete: x.responseBodyComplete, sha256: x.responseBodySha256 },
    },
  };
  // HAR 1.2 as DefinitelyTyped's har-format writes it down: a field missing or of the wrong type fails tsc.
  return entry satisfies SpecEntry;
}

/** A session as a HAR page; `first` (the session's first exchange) stands in when its row is gone. */
export function harPage(id: string, s: SessionRecord | null, first: { agent: string; startedAt: string }): HarPage {
  const agent = s?.agent ?? first.agent;
  const from = s?.clientAddress ? ` from ${s.clientAddress}` : '';
  const page: HarPage = {
    startedDateTime: s?.startedAt ?? first.startedAt,
    id,
    title: `${agent}: session ${id}${from}`,
    pageTimings: {},
    ...(s ? {} : { comment: 'the session is not in the record (its row is gone); its first exchange stands in' }),
    _airlock: { agent, clientAddress: s?.clientAddress ?? null, endedAt: s?.endedAt ?? null, via: s?.via ?? null, token: s?.token ?? null },
  };
  return page satisfies SpecPage;
}

/**
 * A HAR file in pieces: `head()`, then `entry(x)` for each exchange in start order, then `tail()`. JSON
 * escapes every control character; `escape` may escape more (the CLI's `\u2028`, bidi controls) as long
 * as the text stays JSON that parses to the same value.
 */
export class HarWriter {
  private count = 0;
  private readonly pages = new Map<string, { agent: string; startedAt: string }>();

  constructor(
    private readonly creator: { name: string; version: string },
    private readonly lookupSession: (id: string) => SessionRecord | null,
    private readonly comment: string,
    private readonly escape: (json: string) => string = (j) => j,
  ) {}

  head(): string {
    return `{"log":{"version":"1.2","creator":${this.escape(JSON.stringify(this.creator))},"entries":[`;
  }

  entry(x: ExchangeRecord): string {
    if (x.sessionId && !this.pages.has(x.sessionId)) this.pages.set(x.sessionId, { agent: x.agent, startedAt: x.startedAt });
    return `${this.count++ === 0 ? '' : ','}\n${this.escape(JSON.stringify(harEntry(x)))}`;
  }

  /** The pages (one per session met, ordered by start as HAR viewers list them) and the log's comment. */
  tail(): string {
    const pages = [...this.pages].map(([id, first]) => harPage(id, this.lookupSession(id), first));
    pages.sort((a, b) => (a.startedDateTime < b.startedDateTime ? -1 : a.startedDateTime > b.startedDateTime ? 1 : 0));
    const list = pages.map((p) => `\n${this.escape(JSON.stringify(p))}`).join(',');
    return `\n],"pages":[${list}\n],"comment":${this.escape(JSON.stringify(this.comment))}}}\n`;
  }

  get entries(): number {
    return this.count;
  }
}

export interface HarExport {
  text: string;
  count: number;
  bytes: number;
  sha256: string;
}

/** Rows read per turn of the event loop while a HAR is built off the gateway's path... */
const SLICE_ROWS = 32;
/** ...or fewer, once this many bytes of HAR were made in the turn (bodies decode to up to 16 MiB each). */
const SLICE_BYTES = 1024 * 1024;

/**
 * A HAR of the record at `file`, read on a read-only connection of its own inside one read transaction
 * (a snapshot the gateway's writes do not change, and never the gateway's own connection, which a long
 * read would keep busy), a slice of rows per turn of the event loop so the gateway keeps serving.
 * Refused as soon as it passes `maxBytes` of UTF-8 (the export is then for `airlock exchanges export`,
 * which streams to a file); hashed as it is made.
 */
export async function harFromRecord(
  file: string,
  q: ExportQuery,
  opts: { creator: { name: string; version: string }; comment: string; maxBytes: number; tooLarge: (bytes: number) => Error },
): Promise<HarExport> {
  const ro = new (sqlite())(file, { readonly: true, fileMustExist: true });
  try {
    ro.pragma('busy_timeout = 5000');
    ro.exec('BEGIN');
    const w = new HarWriter(opts.creator, (id) => readSession(ro, id), opts.comment);
    const hash = createHash('sha256');
    const parts: string[] = [];
    let bytes = 0;
    let turnBytes = 0;
    let turnRows = 0;
    const add = (piece: string): void => {
      const n = Buffer.byteLength(piece, 'utf8');
      bytes += n;
      if (bytes > opts.maxBytes) throw opts.tooLarge(bytes);
      hash.update(piece, 'utf8');
      parts.push(piece);
      turnBytes += n;
    };
    add(w.head());
    for (const x of readExchangeRecords(ro, q)) {
      add(w.entry(x));
      if (++turnRows >= SLICE_ROWS || turnBytes >= SLICE_BYTES) {
        turnRows = 0;
        turnBytes = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    add(w.tail());
    return { text: parts.join(''), count: w.entries, bytes, sha256: hash.digest('hex') };
  } finally {
    if (ro.inTransaction) ro.exec('COMMIT');
    ro.close();
  }
}
