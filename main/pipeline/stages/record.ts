import type { OutgoingHttpHeaders, IncomingHttpHeaders } from 'node:http';
import type { Exchange } from '../../exchange/exchange';
import type { ExchangeRecord, HeaderMap, ReviewRecord, Store } from '../../store';
import type { Stage } from '../stage';

/** Node's parsed headers are already `string | string[]` by name; the store masks and serialises them. */
function headerMap(h: IncomingHttpHeaders | OutgoingHttpHeaders | null): HeaderMap | null {
  return h as HeaderMap | null;
}

/** The captured prefix as one buffer (always a copy: a chunk may be a view of a larger socket read). */
function captured(chunks: Buffer[] | null): Buffer | null {
  return chunks ? Buffer.concat(chunks) : null;
}

let isoSecond = -1;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, with the part up to the second kept from the previous call: exchanges
 * recorded in the same second share it (0.5 µs → 0.02 µs, twice per exchange). Outside years 0–9999
 * (where the format changes) it is toISOString itself.
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < 253_402_300_800_000)) return new Date(ms).toISOString();
  const t = Math.trunc(ms); // as Date does
  const second = Math.floor(t / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "YYYY-MM-DDTHH:MM:SS."
  }
  const milli = t - second * 1000;
  return isoPrefix + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z';
}

export function toRecord(ex: Exchange): ExchangeRecord {
  return {
    id: ex.id,
    sessionId: ex.sessionId,
    agent: ex.agent.name,
    startedAt: isoTime(ex.startedAt),
    endedAt: ex.endedAt === null ? null : isoTime(ex.endedAt),
    method: ex.method,
    scheme: ex.scheme,
    host: ex.host,
    port: ex.port,
    path: ex.path,
    kind: ex.kind,
    verdict: ex.decision?.verdict ?? null,
    ruleId: ex.decision?.ruleId ?? null,
    explanation: ex.decision?.explanation ?? null,
    status: ex.status,
    error: ex.error,
    requestBytes: ex.requestBytes,
    responseBytes: ex.responseBytes,
    timings: {
      connectMs: ex.upstreamConnection?.connectMs ?? null,
      tlsMs: ex.upstreamConnection?.tlsMs ?? null,
      upstreamMs: ex.upstreamStartedAt !== null && ex.upstreamHeadersAt !== null ? ex.upstreamHeadersAt - ex.upstreamStartedAt : null,
      totalMs: ex.endedAt === null ? null : ex.endedAt - ex.startedAt,
    },
    requestHeaders: headerMap(ex.requestHeaders) ?? {},
    responseHeaders: headerMap(ex.responseHeaders),
    requestBody: captured(ex.requestCapture),
    responseBody: captured(ex.responseCapture),
    requestBodyComplete: ex.requestCaptureComplete,
    responseBodyComplete: ex.responseCaptureComplete,
    requestBodySha256: ex.requestSha256,
    responseBodySha256: ex.responseSha256,
    reviewId: ex.reviewId,
  };
}

/**
 * First step: nothing is forwarded unrecorded. While the database refuses the record's writes
 * (disk full, say) every request is refused with 503 before any other step runs; what was recorded
 * meanwhile is kept in memory and written when the database takes writes again.
 */
export function recordGuardStage(store: Store): Stage {
  return {
    name: 'record-guard',
    onRequest(ex, io) {
      const h = store.exchanges.health();
      if (h.ok) return;
      const message = `Airlock did not forward this request: it cannot write its record (${h.error}, since ${h.since}). ` +
        'Nothing goes through unrecorded; Airlock tries again every few seconds.';
      ex.error = message;
      io.respond(503, { 'content-type': 'text/plain; charset=utf-8', 'x-airlock-error': 'record-unavailable', 'retry-after': '5' }, message + '\n');
      return 'handled';
    },
  };
}

/** A held push's review as the record needs it. */
type HeldReview = Pick<ReviewRecord, 'id' | 'state' | 'decidedBy' | 'reason' | 'bodySha256' | 'bodyBytes' | 'upstreamResult'>;

/**
 * A push held for review, as its exchange is recorded. The hold stage reads the whole body itself (it
 * never passes a tap): what the agent sent is the held body, whose size and SHA-256 the review keeps,
 * with the exact bytes in `<data-dir>/pushes/<sha256>.body` (referenced by the review, never copied into
 * the record). How the review ended goes into `error` when the push did not go through: the agent got
 * an HTTP 200 whose report-status rejected every ref, which alone reads as a success.
 */
export function applyHeldPush(ex: Exchange, review: HeldReview): void {
  ex.requestBytes = review.bodyBytes;
  ex.requestSha256 = review.bodySha256;
  ex.requestCapture = null;
  ex.requestCaptureComplete = true;
  const said = ex.error;
  const tag = `review #${review.id}`;
  if (review.state === 'denied' || review.state === 'expired' || review.state === 'interrupted') {
    const by = review.state === 'denied' && review.decidedBy ? ` by ${review.decidedBy}` : '';
    ex.error = `${tag} ${review.state}${by}${review.reason ? `: ${review.reason}` : ''}; the push was not forwarded` + (said ? `; ${said}` : '');
  } else if (review.state === 'approved') {
    const result = review.upstreamResult && review.upstreamResult !== 'ok' ? review.upstreamResult : null;
    if (said || result) ex.error = `${tag} approved; ${[result, said].filter((s) => s !== null).join('; ')}`;
  }
}

/** The path and error as the record holds them (credentials masked): what live views show too. */
export type RecordedText = { path: string; error: string | null };

/**
 * Last step: every exchange goes to the local record (batched, off the hot path) and to live UIs, which get
 * its path and error as recorded (null when recording is off or the record could not serialise it).
 */
export function recordStage(store: Store | null, emit: (ex: Exchange, recorded: RecordedText | null) => void, beforeRecord: () => void = () => {}): Stage {
  return {
    name: 'record',
    onDone(ex) {
      if (store && ex.reviewId !== null) {
        let review: ReviewRecord | null = null;
        try {
          review = store.reviews.get(ex.reviewId);
        } catch {
          review = null; // recorded as it is: the review (its own table) says the rest
        }
        if (review) applyHeldPush(ex, review);
      }
      if (store) beforeRecord();
      emit(ex, store ? store.exchanges.record(toRecord(ex)) : null);
    },
  };
}
