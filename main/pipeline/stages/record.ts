import type { OutgoingHttpHeaders, IncomingHttpHeaders } from 'node:http';
import type { Exchange } from '../../exchange/exchange';
import type { ExchangeRecord, Store } from '../../store';
import type { Stage } from '../stage';

function headerMap(h: IncomingHttpHeaders | OutgoingHttpHeaders | null): Record<string, string | string[]> | null {
  if (!h) return null;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

export function toRecord(ex: Exchange): ExchangeRecord {
  return {
    id: ex.id,
    sessionId: ex.sessionId,
    agent: ex.agent.name,
    startedAt: new Date(ex.startedAt).toISOString(),
    endedAt: ex.endedAt === null ? null : new Date(ex.endedAt).toISOString(),
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
      connectMs: null,
      tlsMs: null,
      upstreamMs: ex.upstreamStartedAt !== null && ex.upstreamHeadersAt !== null ? ex.upstreamHeadersAt - ex.upstreamStartedAt : null,
      totalMs: ex.endedAt === null ? null : ex.endedAt - ex.startedAt,
    },
    requestHeaders: headerMap(ex.requestHeaders) ?? {},
    responseHeaders: headerMap(ex.responseHeaders),
    requestBody: ex.requestCapture ? Buffer.concat(ex.requestCapture) : null,
    responseBody: ex.responseCapture ? Buffer.concat(ex.responseCapture) : null,
    requestBodyComplete: ex.requestCaptureComplete,
    responseBodyComplete: ex.responseCaptureComplete,
    requestBodySha256: ex.requestSha256,
    responseBodySha256: ex.responseSha256,
    reviewId: ex.reviewId,
  };
}

/** Last step: every exchange goes to the local record (batched, off the hot path) and to live UIs. */
export function recordStage(store: Store | null, emit: (ex: Exchange) => void): Stage {
  return {
    name: 'record',
    onDone(ex) {
      if (store) store.exchanges.record(toRecord(ex));
      emit(ex);
    },
  };
}
