import type { IncomingHttpHeaders } from 'node:http';
import type { DecisionView, ExchangeKind, ExchangeView } from '../contract/views';
import type { AgentIdentity } from '../agents/authenticator';

/** How long a new upstream connection took to open: TCP connect, then the TLS handshake (null: plain HTTP). */
export interface ConnectionTimings {
  connectMs: number | null;
  tlsMs: number | null;
}

/**
 * One request/response through Airlock, from the agent's bytes to upstream's
 * answer (mitmproxy's Flow). Every stage reads and writes this object; the
 * sockets stay in the gateway. `toView()` is the only shape that leaves main.
 */
export class Exchange {
  readonly startedAt = Date.now();
  endedAt: number | null = null;
  kind: ExchangeKind = 'other';
  /** Repository path for git requests (e.g. `/owner/repo.git`). */
  repoPath: string | null = null;
  decision: DecisionView | null = null;
  reviewId: string | null = null;
  status: number | null = null;
  error: string | null = null;
  requestBytes = 0;
  responseBytes = 0;
  responseHeaders: IncomingHttpHeaders | null = null;
  upstreamStartedAt: number | null = null;
  upstreamHeadersAt: number | null = null;
  /**
   * Opening times of the upstream connection when this exchange was the first on it (TCP connect,
   * then TLS; filled in as the connection opens); null on a kept-alive connection.
   */
  upstreamConnection: ConnectionTimings | null = null;
  /** Captured prefixes of the bodies (up to the capture cap) for the log. */
  requestCapture: Buffer[] | null = null;
  responseCapture: Buffer[] | null = null;
  requestCaptureComplete = true;
  /** SHA-256 of the whole body as it passed, set when the body outgrew the capture cap (a body kept whole is its own record). */
  requestSha256: string | null = null;
  responseSha256: string | null = null;
  responseCaptureComplete = true;

  constructor(
    /** Unique in the record (the store hands them out in start order). */
    readonly id: string,
    readonly agent: AgentIdentity,
    readonly sessionId: string | null,
    readonly method: string,
    readonly scheme: 'http' | 'https',
    readonly host: string,
    readonly port: number,
    readonly path: string,
    readonly requestHeaders: IncomingHttpHeaders,
    readonly clientAddress: string,
  ) {}

  get url(): string {
    const defaultPort = this.scheme === 'https' ? 443 : 80;
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.scheme}://${h}${this.port === defaultPort ? '' : ':' + this.port}${this.path}`;
  }

  /** host or host:port, as credentials are keyed. */
  get authority(): string {
    const defaultPort = this.scheme === 'https' ? 443 : 80;
    return this.port === defaultPort ? this.host : `${this.host}:${this.port}`;
  }

  toView(): ExchangeView {
    return {
      id: this.id,
      agent: this.agent.name,
      sessionId: this.sessionId,
      kind: this.kind,
      method: this.method,
      scheme: this.scheme,
      host: this.host,
      port: this.port,
      path: this.path,
      startedAt: new Date(this.startedAt).toISOString(),
      endedAt: this.endedAt === null ? null : new Date(this.endedAt).toISOString(),
      status: this.status,
      error: this.error,
      requestBytes: this.requestBytes,
      responseBytes: this.responseBytes,
      decision: this.decision,
      reviewId: this.reviewId,
      timings: {
        totalMs: this.endedAt === null ? null : this.endedAt - this.startedAt,
        upstreamMs: this.upstreamStartedAt !== null && this.upstreamHeadersAt !== null
          ? this.upstreamHeadersAt - this.upstreamStartedAt : null,
      },
    };
  }
}
