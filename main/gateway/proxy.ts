import { createHash, randomUUID, type Hash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isIP } from 'node:net';
import type { Duplex, Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import tls from 'node:tls';
import { Proxy as MitmProxy } from 'http-mitm-proxy';
import type { Dispatcher } from 'undici';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LeafIssuer } from '../../certs';
import { validateHostname } from '../../certs';
import type { AgentAuthenticator, AgentIdentity } from '../agents/authenticator';
import { Exchange } from '../exchange/exchange';
import type { Logger } from '../log';
import { decideRequest, runDoneStages, type PipelineOutcome } from '../pipeline/run-pipeline';
import type { RequestIO, Stage } from '../pipeline/stage';
import { MaskStream, maskString } from './mask-stream';
import { claimConnectionTimings, explainUpstreamError, fromUndiciError, onUndiciSocket, responseTimeout, timeConnection, type UpstreamPool } from './upstream';

/** Who is on the other end of a client connection, and where its tunnel goes. */
interface ConnMeta {
  agent: AgentIdentity;
  sessionId: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  servername: string | null;
  /** The CONNECT's Proxy-Authorization: asked again on each request in the tunnel (a removed agent's tunnel stops working). */
  proxyAuth: string;
}

export interface SessionHooks {
  sessionStarted(s: { id: string; agent: string; clientAddress: string; startedAt: string; token: string | null; via: string | null }): void;
  sessionEnded(id: string, endedAt: string): void;
}

export interface GatewayOptions {
  issuer: LeafIssuer;
  auth: AgentAuthenticator;
  upstream: UpstreamPool;
  stages: readonly Stage[];
  log: Logger;
  sessions?: SessionHooks;
  port: number;
  upstreamTimeoutMs: number;
  clientHeadersTimeoutMs: number;
  /** Longest silence allowed inside a request body before the request is given up (408); 0 turns it off. */
  clientBodyIdleTimeoutMs?: number;
  clientTlsTimeoutMs: number;
  maxHeaderCount: number;
  /** Largest request head (request line + headers) a client may send; beyond it, 431. */
  maxHeaderBytes: number;
  bodyCaptureBytes: number;
  /** Upstream credentials the agent never sees, by `host` or `host:port`. */
  credentials?: { resolve(authority: string): { header: string; secrets: string[] } | null };
  /** Ids for new exchanges (the store's, so they are unique in the record); default: a counter from 1. */
  exchangeIds?: () => string;
  /**
   * Requests one agent may have open to one host at once (default 64): the connections to a host
   * (256) are shared by every agent, and one agent's hung or endless requests must not make the
   * others' wait. Beyond it, 503.
   */
  maxUpstreamRequestsPerAgentHost?: number;
  /** Whether the policy refuses a target on its host and port alone (`targetDenial`): no early connection is opened to one. */
  deniedTarget?: (host: string, port: number) => unknown;
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
]);

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 407: 'Proxy Authentication Required', 408: 'Request Timeout',
  413: 'Payload Too Large', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** The answer when no exchange id can be had because the record's database refuses writes. */
const NO_RECORD = 'Airlock did not forward this request: it cannot write its record (its database refuses writes). Nothing goes through unrecorded.';

const NOT_A_PATH = 'Airlock refused this request: the request target is not a path.';

/** A tunnelled request's target as a path (`/p?q`; an absolute URL's path and query), or null when it is neither. */
function originPath(url: string | undefined): string | null {
  const path = url ?? '/';
  if (path.startsWith('/')) return path;
  try {
    const u = new URL(path);
    return u.pathname + u.search;
  } catch {
    return null;
  }
}

/** Writes a complete HTTP error on a raw socket (where no ServerResponse exists) and closes it. */
function rawError(socket: Duplex, status: number, message: string, extraHeaders = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = message + '\n';
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n${extraHeaders}Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // Nothing reads this socket any more (Node's HTTP server has let go of it): bytes the client sends
  // after the answer would sit unread, its end would never be seen, and the socket would never
  // close (one file descriptor each, for as long as the gateway runs). They are dropped, and a
  // client that keeps the connection open is cut after a few seconds.
  socket.resume();
  const cut = setTimeout(() => socket.destroy(), RAW_ERROR_LINGER_MS);
  cut.unref();
  socket.once('close', () => clearTimeout(cut));
}

/** `maxUpstreamRequestsPerAgentHost` when the options do not say (as the config's default). */
const DEFAULT_UPSTREAM_PER_AGENT_HOST = 64;

/** How long a connection answered with a raw error may stay open for the client to read the answer. */
const RAW_ERROR_LINGER_MS = 5_000;

const REVOKED = "Airlock refused this request: the token this connection was opened with no longer works (the agent was removed, or its run ended); the connection is closed.";

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function sendError(res: ServerResponse, status: number, message: string, code: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = message + '\n';
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-airlock-error': code, ...extra });
  res.end(body);
}

/**
 * Why a request (or WebSocket upgrade) that names another host than the one it goes to is refused,
 * or null: `servername` is its TLS SNI, `named` its Host header's host. See `Flow.misdirected`.
 */
function misdirection(ex: Exchange, servername: string | null, named: string | null, credentialed: boolean): string | null {
  const other = servername !== null && servername !== ex.host ? servername : named !== null && named !== ex.host ? named : null;
  if (other === null) return null;
  if (credentialed) return `Airlock refused this request: it goes to ${ex.host} but names ${other}, and Airlock sends its credential for ${ex.authority} only to ${ex.host}.`;
  if (isIP(ex.host)) return null;
  return `Airlock refused this request: it goes to ${ex.host} but names ${other} (HTTP 421). Airlock decides on, shows and records the host a request goes to, so the request must name that host.`;
}

/** Parses `host:port` / `[v6]:port` from a CONNECT line, validating the host before it touches anything. */
export function parseAuthority(authority: string, defaultPort: number | null): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/\s[\]]+))(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return null;
  if (m[1] !== undefined && isIP(m[1]) !== 6) return null; // brackets hold an IPv6 address, nothing else
  const rawHost = m[1] ?? m[2]!;
  const port = m[3] !== undefined ? Number(m[3]) : defaultPort;
  if (port === null || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  try {
    return { host: validateHostname(rawHost).value, port };
  } catch {
    return null;
  }
}

/**
 * `parseAuthority` for a Host header, memoised: a client sends the same Host on every request of a
 * connection, and validating it (regex, IP parsing, label rules) was ~2.5 µs per request. The result
 * depends on the header's exact text and the default port only; results are frozen, the memo is
 * bounded (cleared when full, so a client cycling Host values costs a parse each, as before).
 */
const hostMemo = new Map<string, Readonly<{ host: string; port: number }> | null>();
const HOST_MEMO_MAX = 512;
export function hostAuthority(hostHeader: string, defaultPort: number): Readonly<{ host: string; port: number }> | null {
  const key = `${defaultPort}|${hostHeader}`; // unambiguous: the port's digits end at the first '|'
  const hit = hostMemo.get(key);
  if (hit !== undefined) return hit;
  const parsed = parseAuthority(hostHeader, defaultPort);
  const v = parsed ? Object.freeze(parsed) : null;
  if (hostMemo.size >= HOST_MEMO_MAX) hostMemo.clear();
  hostMemo.set(key, v);
  return v;
}

/**
 * The proxy agents route through. Built on http-mitm-proxy's `Proxy` (its
 * WebSocket relay is used as is), with connection handling, certificates and
 * the request path replaced to fix its defects:
 * - CONNECT tunnels are handed to an in-process TLS server (no loopback hop to
 *   a helper port, no listener on 0.0.0.0, no per-host servers);
 * - certificates come from `certs/` (validated host names, one shared leaf key,
 *   LRU + disk cache) instead of files named after unvalidated CONNECT hosts;
 * - request bodies stream with backpressure, every stage runs before anything
 *   goes upstream, and errors are plain sentences instead of `504 Proxy Error`.
 */
export class Gateway extends MitmProxy {
  private readonly servers: http.Server[] = [];
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly meta = new WeakMap<object, ConnMeta>();
  private readonly plainSessions = new WeakMap<object, Map<string, string>>();
  /** Open WebSockets and their exchanges (recorded when they close). */
  private readonly wsExchanges = new Map<WebSocket, { ex: Exchange; sent: MessageTap; received: MessageTap }>();
  private readonly openSockets = new Set<Duplex>();
  private readonly authRetries = new WeakMap<object, number>();
  private readonly errorHandled = new WeakSet<object>();
  private readonly answered = new WeakSet<object>();
  private boundPort = 0;
  private exchangeCounter = 0;
  /** Requests open upstream, by agent and host (`maxUpstreamRequestsPerAgentHost`). */
  private readonly upstreamOpen = new Map<string, number>();

  /** Takes one of the agent's places for requests open to this host; false when it has none left. */
  takeUpstreamPlace(key: string): boolean {
    const n = this.upstreamOpen.get(key) ?? 0;
    if (n >= (this.opts.maxUpstreamRequestsPerAgentHost ?? DEFAULT_UPSTREAM_PER_AGENT_HOST)) return false;
    this.upstreamOpen.set(key, n + 1);
    return true;
  }

  giveUpstreamPlace(key: string): void {
    const n = (this.upstreamOpen.get(key) ?? 1) - 1;
    if (n > 0) this.upstreamOpen.set(key, n);
    else this.upstreamOpen.delete(key);
  }
  /** A new exchange's id, or null when the record cannot give one (its database refuses writes): the request is then refused. */
  private nextExchangeId(): string | null {
    try {
      return this.opts.exchangeIds ? this.opts.exchangeIds() : String(++this.exchangeCounter);
    } catch (e) {
      this.opts.log.error('no exchange id', { error: (e as Error).message });
      return null;
    }
  }

  constructor(private readonly opts: GatewayOptions) {
    super();
    this.httpAgent = opts.upstream.http;
    this.httpsAgent = opts.upstream.https;
    this.keepAlive = true;
    // Intercepted traffic (TLS or plain HTTP inside a CONNECT tunnel) is handed
    // back to the listening server that accepted the CONNECT, so Node's header
    // timeouts apply to it too; `meta` marks those sockets as tunnelled.
    this.onWebSocketFrame((ctx, type, fromServer, data, flags, callback) => {
      if (type === 'message') this.tapWebSocket(ctx, fromServer, data);
      callback(null, data, flags);
    });
    this.onWebSocketError((ctx, err) => {
      // Upstream failed after the client's upgrade was accepted: close the client promptly with a reason.
      const ws = ctx?.clientToProxyWebSocket as (WebSocket & { _socket?: Socket }) | undefined;
      const rec = ws ? this.wsExchanges.get(ws) : undefined;
      if (rec && !rec.ex.error) rec.ex.error = `upstream WebSocket failed: ${String(err?.message ?? err)}`.slice(0, 300);
      if (!ws || ws.readyState !== 1) return;
      try {
        ws._socket?.resume();
        ws.close(1011, `Airlock: upstream failed: ${String(err?.message ?? err)}`.slice(0, 120));
        setTimeout(() => ws.terminate(), 2000).unref();
      } catch {
        ws.terminate();
      }
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  private makeHttpServer(): http.Server {
    const server = http.createServer({
      maxHeaderSize: this.opts.maxHeaderBytes,
      headersTimeout: this.opts.clientHeadersTimeoutMs,
      requestTimeout: 0, // held pushes may take minutes to upload; slow headers are caught by headersTimeout
      connectionsCheckingInterval: Math.min(1000, this.opts.clientHeadersTimeoutMs),
      keepAliveTimeout: 30_000,
    });
    // A defect in handling one request must not end the process (every agent's traffic with it):
    // that request gets a 500 with the reason, the log gets the stack, the proxy keeps serving.
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      try {
        this.handleRequest(req, res, this.meta.has(req.socket));
      } catch (e) {
        this.internalError(e, 'request');
        if (!res.headersSent) sendError(res, 500, `Airlock failed on this request: ${(e as Error).message}`, 'internal');
        else res.destroy();
      }
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.onUpgrade(req, socket, head, this.meta.has(req.socket));
      } catch (e) {
        this.internalError(e, 'upgrade');
        rawError(socket, 500, `Airlock failed on this request: ${(e as Error).message}`);
      }
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.handleConnect(req, socket, head, server);
      } catch (e) {
        this.internalError(e, 'CONNECT');
        rawError(socket, 500, `Airlock failed on this CONNECT: ${(e as Error).message}`);
      }
    });
    server.on('connection', (socket: Socket) => this.track(socket));
    return server;
  }

  private internalError(e: unknown, what: string): void {
    this.opts.log.error(`internal error handling a ${what}`, { error: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack });
  }

  private track(socket: Duplex): void {
    if (this.openSockets.has(socket)) return; // a socket handed to the HTTP server again (after a 407)
    this.openSockets.add(socket);
    socket.once('close', () => this.openSockets.delete(socket));
  }

  /** Binds 127.0.0.1 and, when the machine has it, [::1] on the same port. Never 0.0.0.0. */
  async start(): Promise<void> {
    const v4 = this.makeHttpServer();
    await listen(v4, this.opts.port, '127.0.0.1');
    this.servers.push(v4);
    this.boundPort = (v4.address() as AddressInfo).port;
    const v6 = this.makeHttpServer();
    try {
      await listen(v6, this.boundPort, '::1');
      this.servers.push(v6);
    } catch (e) {
      this.opts.log.debug('not listening on [::1]', { reason: (e as Error).message });
    }
  }

  /**
   * http-mitm-proxy reads the upstream WebSocket's state when either side closes; there is none when
   * opening it failed, and the TypeError would end the process. The client's side is then cut.
   */
  override _onWebSocketClose(ctx: Parameters<MitmProxy['_onWebSocketClose']>[0], closedByServer: boolean, code: number, message: Buffer): void {
    if (!ctx.proxyToServerWebSocket) {
      (ctx.clientToProxyWebSocket as WebSocket | undefined)?.terminate();
      return;
    }
    super._onWebSocketClose(ctx, closedByServer, code, message);
  }

  /** http-mitm-proxy's synchronous close; `stop()` is the one shutdown path. */
  override close(): this {
    void this.stop();
    return this;
  }

  /** Stops listening, closes every connection and waits (bounded) until their close events ran (sessions end, exchanges finish). */
  async stop(): Promise<void> {
    // Waited for by their 'close' event, which comes a turn after destroy() (libuv closes the handle
    // then): the session's end is written from it. `server.close()` destroys idle keep-alive sockets
    // itself, so these are listened to before it runs, and `destroyed` alone does not mean closed.
    const sockets = [...this.openSockets].map((s) => new Promise<void>((r) => {
      if (s.closed) return r();
      s.once('close', () => r());
    }));
    const closed = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const s of this.openSockets) s.destroy();
    for (const s of this.servers) s.closeAllConnections();
    this.wss.close();
    await Promise.race([Promise.all([...closed, ...sockets]), new Promise((r) => setTimeout(r, 2000).unref())]);
    await new Promise((r) => setImmediate(r));
  }

  // ---- who is it? ----------------------------------------------------------

  private startSession(agent: AgentIdentity, socket: Duplex): string {
    const id = randomUUID();
    const clientAddress = (socket as Socket).remoteAddress ?? 'unknown';
    try {
      this.opts.sessions?.sessionStarted({ id, agent: agent.name, clientAddress, startedAt: new Date().toISOString(), token: agent.token ?? null, via: agent.via ?? null });
    } catch (e) {
      this.opts.log.error('could not record session start', { error: (e as Error).message });
    }
    socket.once('close', () => {
      try {
        this.opts.sessions?.sessionEnded(id, new Date().toISOString());
      } catch (e) {
        this.opts.log.error('could not record session end', { error: (e as Error).message });
      }
    });
    return id;
  }

  /** The session of an agent's plain-HTTP requests on one client connection (one per connection, per agent). */
  private plainSession(agent: AgentIdentity, socket: Duplex): string {
    let byAgent = this.plainSessions.get(socket);
    if (!byAgent) this.plainSessions.set(socket, (byAgent = new Map()));
    let sessionId = byAgent.get(agent.name);
    if (!sessionId) byAgent.set(agent.name, (sessionId = this.startSession(agent, socket)));
    return sessionId;
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // The parser can report more than one error for one request (a large header split
    // over several TLS records): answer the first, ignore the rest while the answer drains.
    if (this.answered.has(socket)) return;
    this.answered.add(socket);
    const code = err.code ?? '';
    let status = 400;
    let message = `Airlock could not parse this request (${code || err.message}).`;
    if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = `Airlock refused this request: its headers are larger than ${formatBytes(this.opts.maxHeaderBytes)} (Airlock's maxHeaderBytes setting).`;
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') {
      status = 408;
      message = 'Airlock closed this connection: the request headers did not arrive in time.';
    } else if (/duplicate content-length/i.test(err.message)) {
      message = 'Airlock refused this request: it has more than one Content-Length, which is ambiguous.';
    } else if (code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || /content-length.*transfer-encoding|transfer-encoding.*content-length/i.test(err.message)) {
      message = 'Airlock refused this request: it has both Content-Length and Transfer-Encoding, which is ambiguous.';
    } else if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_BODY_TIMEOUT') {
      socket.destroy(); // gone, or given up and answered already (408, watchBody)
      return;
    }
    this.opts.log.warn('bad client input', { code, status, message: err.message });
    rawError(socket, status, message);
  }

  private handleConnect(req: IncomingMessage, socket: Duplex, head: Buffer, server: http.Server): void {
    if (!this.errorHandled.has(socket)) {
      this.errorHandled.add(socket);
      socket.on('error', (e: NodeJS.ErrnoException) => this.opts.log.debug('client socket error', { code: e.code }));
    }
    if (this.meta.has(socket)) {
      rawError(socket, 400, 'Airlock refused a CONNECT inside a CONNECT tunnel.');
      return;
    }
    const auth = this.opts.auth.authenticate(req.headers['proxy-authorization']);
    if (!auth.ok) {
      (req.headers['proxy-authorization'] ? this.opts.log.info : this.opts.log.debug)('CONNECT refused: proxy authentication', { reason: auth.reason });
      const body = `Airlock needs agent credentials: ${auth.reason}. Use \`airlock run --agent NAME -- …\`.\n`;
      const retries = (this.authRetries.get(socket) ?? 0) + 1;
      this.authRetries.set(socket, retries);
      if (retries > 3 || !socket.writable) {
        rawError(socket, 407, body.trim(), 'Proxy-Authenticate: Basic realm="Airlock"\r\n');
        return;
      }
      // Keep the connection: clients such as libcurl (git) probe without credentials and
      // retry on the same connection. A fresh HTTP parser takes the next request.
      socket.write(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="Airlock"\r\n` +
        `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      if (head.length > 0) socket.unshift(head);
      server.emit('connection', socket);
      return;
    }
    const target = parseAuthority(req.url ?? '', null);
    if (!target) {
      this.opts.log.warn('CONNECT refused: bad target', { target: req.url });
      rawError(socket, 400, `Airlock refused CONNECT to "${String(req.url).slice(0, 200)}": not a valid host:port.`);
      return;
    }
    (socket as Socket).setNoDelay?.(true);
    // Answer first: the client prepares and sends its ClientHello while Airlock opens and
    // verifies the upstream connection (TCP + TLS, no request byte) and issues the leaf.
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const upstreamServername = isIP(target.host) ? undefined : target.host;
    // The early connection is skipped for a target the policy refuses on its address alone (Airlock's
    // own ports, its upstream proxy): its requests are answered 403, and it must not be connected to.
    if (!this.opts.deniedTarget?.(target.host, target.port)) this.opts.upstream.preconnect(target.host, target.port, upstreamServername);
    const sessionId = this.startSession(auth.agent, socket);
    const ctx = this.opts.issuer.getSecureContext(target.host);
    ctx.catch(() => undefined); // reported when used
    const onFirst = (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const base = { agent: auth.agent, sessionId, host: target.host, port: target.port, proxyAuth: String(req.headers['proxy-authorization']) };
      if (first[0] === 0x16) this.startTls(socket as Socket, ctx, base, server);
      else {
        // Not TLS: plain HTTP spoken inside the tunnel. Anything that is not HTTP
        // fails to parse and is answered 400; raw tunnels are never opened.
        this.opts.upstream.discardEarly(target.host, target.port, upstreamServername);
        this.meta.set(socket, { ...base, scheme: 'http', servername: null });
        server.emit('connection', socket);
        socket.resume();
      }
    };
    if (head.length > 0) onFirst(head);
    else {
      const raw = socket as Socket;
      raw.setTimeout(this.opts.clientTlsTimeoutMs, () => raw.destroy());
      // A client that hangs up (or half-closes) before its first byte sends nothing more: its socket
      // is closed at once, not kept half-open until the timeout (one agent could hold thousands).
      const gone = () => raw.destroy();
      raw.once('end', gone);
      raw.once('data', (d: Buffer) => {
        raw.setTimeout(0);
        raw.off('end', gone);
        onFirst(d);
      });
    }
  }

  private startTls(socket: Socket, ctxPromise: Promise<tls.SecureContext>, base: Omit<ConnMeta, 'scheme' | 'servername'>, server: http.Server): void {
    ctxPromise.then((secureContext) => {
      if (socket.destroyed) return;
      // The client's FIN came with its first bytes (read, not yet emitted: the socket is paused). A
      // client that has stopped sending cannot finish a handshake, and the TLS layer would not see
      // that end again: close now.
      if ((socket as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true) {
        socket.destroy();
        return;
      }
      const issuer = this.opts.issuer;
      const tlsSocket = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext,
        // Airlock speaks HTTP/1.x to clients. A client that offers http/1.1 gets it; one that offers
        // only http/1.0 (curl -0) gets that (Node's fixed list would end its handshake with a fatal
        // alert); one that offers neither (h2 only) is refused in the handshake, where it is clear.
        ALPNCallback: ({ protocols }) => (protocols.includes('http/1.1') ? 'http/1.1' : protocols.includes('http/1.0') ? 'http/1.0' : undefined),
        SNICallback: (name, cb) => {
          if (name.toLowerCase().replace(/\.$/, '') === base.host) return cb(null, secureContext);
          issuer.getSecureContext(name).then((c) => cb(null, c), (e) => cb(e as Error));
        },
      });
      const timer = setTimeout(() => tlsSocket.destroy(), this.opts.clientTlsTimeoutMs);
      // The client hung up during the handshake: nothing can follow, close now rather than at the timeout.
      const gone = () => {
        clearTimeout(timer);
        tlsSocket.destroy();
      };
      tlsSocket.once('end', gone);
      tlsSocket.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        this.opts.log.info('client TLS error', { host: base.host, code: e.code, message: e.message });
      });
      tlsSocket.once('secure', () => {
        clearTimeout(timer);
        tlsSocket.off('end', gone);
        const sni = (tlsSocket as tls.TLSSocket & { servername?: string | false }).servername;
        // As a Host header is read: case and a trailing dot do not make another name.
        const servername = typeof sni === 'string' && sni ? sni.toLowerCase().replace(/\.$/, '') : isIP(base.host) ? null : base.host;
        this.meta.set(tlsSocket, { ...base, scheme: 'https', servername });
        this.track(tlsSocket);
        server.emit('connection', tlsSocket);
      });
      socket.resume();
    }, (e: Error) => {
      this.opts.log.warn('no certificate for host', { host: base.host, error: e.message });
      socket.destroy();
    });
  }

  // ---- requests ------------------------------------------------------------

  private resolvePlainTarget(req: IncomingMessage, res: ServerResponse): { agent: AgentIdentity; sessionId: string; host: string; port: number; path: string } | null {
    const auth = this.opts.auth.authenticate(req.headers['proxy-authorization']);
    if (!auth.ok) {
      sendError(res, 407, `Airlock needs agent credentials: ${auth.reason}. Use \`airlock run --agent NAME -- …\`.`, 'proxy-auth',
        { 'proxy-authenticate': 'Basic realm="Airlock"' });
      return null;
    }
    const raw = req.url ?? '';
    if (!/^http:\/\//i.test(raw)) {
      sendError(res, 400, /^https:\/\//i.test(raw)
        ? 'Airlock only takes https:// URLs through CONNECT; configure the client to use Airlock as its HTTPS proxy.'
        : 'Airlock is a proxy: send an absolute http:// URL, or CONNECT for https.', 'bad-request');
      return null;
    }
    const slash = raw.indexOf('/', 7);
    const authority = slash === -1 ? raw.slice(7) : raw.slice(7, slash);
    const target = parseAuthority(authority.replace(/^[^@]*@/, ''), 80);
    if (!target) {
      sendError(res, 400, `Airlock refused this request: "${authority.slice(0, 200)}" is not a valid host.`, 'bad-host');
      return null;
    }
    const sessionId = this.plainSession(auth.agent, req.socket);
    return { agent: auth.agent, sessionId, host: target.host, port: target.port, path: slash === -1 ? '/' : raw.slice(slash) };
  }

  private handleRequest(req: IncomingMessage, res: ServerResponse, inner: boolean): void {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    if (req.rawHeaders.length / 2 > this.opts.maxHeaderCount) {
      this.opts.log.warn('too many headers', { count: req.rawHeaders.length / 2 });
      res.shouldKeepAlive = false;
      sendError(res, 431, `Airlock refused this request: more than ${this.opts.maxHeaderCount} header lines.`, 'header-flood');
      return;
    }
    let target: { agent: AgentIdentity; sessionId: string; host: string; port: number; path: string; scheme: 'http' | 'https'; servername: string | null };
    if (inner) {
      const m = this.meta.get(req.socket);
      if (!m) {
        sendError(res, 500, 'Airlock lost track of this connection.', 'internal');
        return;
      }
      if (!this.opts.auth.authenticate(m.proxyAuth).ok) {
        req.resume();
        res.shouldKeepAlive = false;
        sendError(res, 403, REVOKED, 'agent-revoked', { connection: 'close' });
        return;
      }
      const path = originPath(req.url);
      if (path === null) {
        sendError(res, 400, NOT_A_PATH, 'bad-request');
        return;
      }
      target = { ...m, path };
    } else {
      const t = this.resolvePlainTarget(req, res);
      if (!t) return;
      target = { ...t, scheme: 'http', servername: null };
    }
    // HTTP/1.1 needs a Host header; without a port it means the scheme's default, which is what
    // clients send for :443 and :80 (`Host: github.com`).
    const hostHeader = req.headers.host;
    if (hostHeader !== undefined && hostLines(req.rawHeaders) > 1) {
      // Node keeps the first, another server may route by the last (RFC 9112 §3.2: a 400).
      sendError(res, 400, 'Airlock refused this request: it has more than one Host header.', 'bad-host');
      return;
    }
    const named = hostHeader ? hostAuthority(hostHeader, target.scheme === 'https' ? 443 : 80) : null;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && !named) {
      sendError(res, 400, hostHeader ? `Airlock refused this request: invalid Host header "${hostHeader.slice(0, 200)}".` : 'Airlock refused this request: it has no Host header.', 'bad-host');
      return;
    }
    const id = this.nextExchangeId();
    if (id === null) {
      req.resume();
      sendError(res, 503, NO_RECORD, 'record-unavailable', { 'retry-after': '5' });
      return;
    }
    const ex = new Exchange(id, target.agent, target.sessionId, req.method ?? 'GET', target.scheme, target.host, target.port,
      target.path, req.headers, req.socket.remoteAddress ?? 'unknown');
    this.watchBody(req, res, ex);
    const flow = new Flow(this, ex, req, res, target.servername, named?.host ?? null);
    flow.run();
  }

  /**
   * A request body that stops arriving is given up after `clientBodyIdleTimeoutMs` of silence:
   * nothing else bounds a held push's upload (it is read into the spool before anything goes
   * upstream), so an agent that sends a push's headers and then nothing would hold its slot,
   * its spool file and the connection for ever. The timer is the socket's idle timer (any byte
   * read or written resets it), armed while the body is incomplete; Node calls the request's
   * `timeout` listener only for a request whose body has not been read to its end.
   */
  private watchBody(req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
    const ms = this.opts.clientBodyIdleTimeoutMs ?? 0;
    if (ms <= 0) return;
    const te = req.headers['transfer-encoding'];
    const length = Number(req.headers['content-length'] ?? 0);
    if (te === undefined && !(length > 0)) return;
    const socket = req.socket;
    socket.setTimeout(ms);
    req.once('end', () => {
      // Once the response has finished, the socket's timer is Node's keep-alive timer: left alone.
      if (!socket.destroyed && !res.writableFinished) socket.setTimeout(0);
    });
    req.on('timeout', () => {
      const message = `Airlock gave up on this request: its body stopped arriving (nothing for ${formatSeconds(ms)}; Airlock's clientBodyIdleTimeoutMs setting).`;
      this.opts.log.warn('request body stalled', { id: ex.id, agent: ex.agent.name, received: socket.bytesRead });
      ex.error = message;
      // Whoever reads the body (a held push's spool, the upstream relay) gets an error: a request
      // that has been answered is not aborted by Node when its socket closes, so it would wait for ever.
      const giveUp = () => {
        req.destroy(Object.assign(new Error(message), { code: 'ERR_BODY_TIMEOUT' }));
        socket.destroy();
      };
      if (res.headersSent) return giveUp();
      ex.status = 408;
      res.shouldKeepAlive = false;
      sendError(res, 408, message, 'body-timeout', { connection: 'close' });
      res.once('finish', giveUp);
      res.once('close', giveUp);
    });
  }

  /** Called by a Flow when its exchange is over. */
  finish(ex: Exchange): void {
    if (ex.endedAt !== null) return;
    ex.endedAt = Date.now();
    runDoneStages(this.opts.stages, ex, (stage, e) => this.opts.log.error(`${stage.name} step failed after the exchange`, { error: (e as Error).message }));
  }

  get options_(): GatewayOptions {
    return this.opts;
  }

  // ---- WebSockets ----------------------------------------------------------

  /**
   * A WebSocket is an exchange like any other: the request stages (classify, policy) decide the
   * upgrade before anything reaches upstream, and the record gets it when it closes, with its
   * messages (each direction's payloads in order, up to the capture cap) and their bytes.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, inner: boolean): void {
    socket.on('error', () => undefined);
    if (String(req.headers.upgrade).toLowerCase() !== 'websocket') {
      rawError(socket, 400, 'Airlock only relays WebSocket upgrades.');
      return;
    }
    let isSSL = false;
    let servername: string | null = null;
    const hostHeader = req.headers.host;
    let target: { agent: AgentIdentity; sessionId: string; host: string; port: number; path: string };
    if (inner) {
      const m = this.meta.get(req.socket);
      if (!m) return rawError(socket, 500, 'Airlock lost track of this connection.');
      if (!this.opts.auth.authenticate(m.proxyAuth).ok) return rawError(socket, 403, REVOKED);
      isSSL = m.scheme === 'https';
      servername = m.servername;
      // http-mitm-proxy rebuilds the upstream URL from the Host header; pin it to the tunnel's target.
      req.headers.host = m.port === (isSSL ? 443 : 80) ? m.host : `${m.host.includes(':') ? `[${m.host}]` : m.host}:${m.port}`;
      const path = originPath(req.url);
      if (path === null) return rawError(socket, 400, NOT_A_PATH);
      // http-mitm-proxy connects to an absolute URL as written: the tunnel's target, decided on and recorded, is the only one.
      req.url = path;
      target = { agent: m.agent, sessionId: m.sessionId, host: m.host, port: m.port, path };
    } else {
      const auth = this.opts.auth.authenticate(req.headers['proxy-authorization']);
      if (!auth.ok) {
        return rawError(socket, 407, `Airlock needs agent credentials: ${auth.reason}.`, 'Proxy-Authenticate: Basic realm="Airlock"\r\n');
      }
      if (!/^ws:\/\/|^http:\/\//i.test(req.url ?? '')) return rawError(socket, 400, 'Airlock needs an absolute ws:// URL.');
      req.url = (req.url ?? '').replace(/^http:/i, 'ws:');
      const raw = req.url.slice(5);
      const slash = raw.indexOf('/');
      const authority = slash === -1 ? raw : raw.slice(0, slash);
      const t = parseAuthority(authority.replace(/^[^@]*@/, ''), 80);
      if (!t) return rawError(socket, 400, `Airlock refused this request: "${authority.slice(0, 200)}" is not a valid host.`);
      const sessionId = this.plainSession(auth.agent, req.socket);
      target = { agent: auth.agent, sessionId, host: t.host, port: t.port, path: slash === -1 ? '/' : raw.slice(slash) };
      req.url = `ws://${hostPort(t.host, t.port, 80)}${target.path}`; // as parsed (no userinfo), what the policy decides on
    }
    for (const h of Object.keys(req.headers)) if (h.startsWith('proxy-')) delete req.headers[h];
    const id = this.nextExchangeId();
    if (id === null) return rawError(socket, 503, NO_RECORD);
    const ex = new Exchange(id, target.agent, target.sessionId, req.method ?? 'GET', isSSL ? 'https' : 'http',
      target.host, target.port, target.path, req.headers, req.socket.remoteAddress ?? 'unknown');
    const refuse = (status: number, message: string) => {
      ex.status = status;
      ex.error = message;
      rawError(socket, status, message);
      this.finish(ex);
    };
    // Named by another SNI or Host than the host it goes to, it is refused as a request is (421). A host
    // Airlock holds a credential for gets none of the agent's own (as for every other request to it),
    // and none is injected into a WebSocket: its frames are not masked.
    const credentialed = isSSL && this.opts.credentials?.resolve(ex.authority) != null;
    const named = hostHeader ? hostAuthority(hostHeader, isSSL ? 443 : 80)?.host ?? null : null;
    const misdirected = misdirection(ex, servername, named, credentialed);
    if (misdirected) return refuse(421, misdirected);
    if (credentialed) {
      if (req.headers.authorization !== undefined) {
        delete req.headers.authorization;
        this.opts.log.info('agent Authorization dropped from a WebSocket upgrade to a host with a stored credential', { id: ex.id, host: ex.authority });
      }
    }
    const cannotHold = () => Promise.reject(new Error('a WebSocket upgrade cannot be held for review'));
    const io: RequestIO = {
      body: null as unknown as Readable, // an upgrade request has no body
      respond: (status, _headers, body) => refuse(status, String(body).trim()),
      respondStream: () => { throw new Error('a WebSocket upgrade cannot be held for review'); },
      forwardWith: cannotHold,
      fetchUpstream: cannotHold,
      credential: null,
      onClientGone: (cb) => socket.once('close', cb),
    };
    decideRequest(this.opts.stages, ex, io, (o) => {
      if (o.action === 'handled') return void this.finish(ex);
      if (o.action === 'refuse') return refuse(o.status, o.message);
      if (socket.destroyed) return refuse(499, 'client closed the connection before the upgrade');
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        ex.status = 101;
        ex.upstreamStartedAt = Date.now();
        this.wsExchanges.set(ws, { ex, sent: new MessageTap(ex, true, this.opts.bodyCaptureBytes), received: new MessageTap(ex, false, this.opts.bodyCaptureBytes) });
        ws.once('close', () => this.finishWebSocket(ws));
        // http-mitm-proxy's relay: frames both ways, close and error propagation.
        try {
          this._onWebSocketServerConnect(isSSL, ws, req);
        } catch (e) {
          // Upgraded already: no HTTP answer is possible, the WebSocket is cut.
          this.internalError(e, 'WebSocket');
          ex.error = `Airlock could not open the WebSocket upstream: ${(e as Error).message}`;
          ws.terminate();
        }
      });
    });
  }

  /** Counts and captures one relayed WebSocket message for its exchange. */
  private tapWebSocket(ctx: { clientToProxyWebSocket?: unknown } | undefined, fromServer: boolean, data: unknown): void {
    const w = ctx?.clientToProxyWebSocket ? this.wsExchanges.get(ctx.clientToProxyWebSocket as WebSocket) : undefined;
    if (!w) return;
    const chunk = Buffer.isBuffer(data) ? data
      : Array.isArray(data) ? Buffer.concat(data as Buffer[])
        : data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(String(data));
    (fromServer ? w.received : w.sent).push(chunk);
  }

  private finishWebSocket(ws: WebSocket): void {
    const w = this.wsExchanges.get(ws);
    if (!w) return;
    this.wsExchanges.delete(ws);
    w.sent.end();
    w.received.end();
    this.finish(w.ex);
  }
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Clean request headers for upstream: no hop-by-hop, no proxy credentials. */
export function upstreamHeaders(headers: IncomingHttpHeaders, rawHeaders: string[]): Array<[string, string]> {
  const connectionTokens = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter((t) => t && !END_TO_END.has(t)));
  const out: Array<[string, string]> = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || connectionTokens.has(lower)) continue;
    out.push([name, rawHeaders[i + 1]!]);
  }
  return out;
}

/**
 * Fields a client's `Connection` header cannot make hop-by-hop: they frame or route the message
 * (RFC 9110 §7.6.1 lets a sender list only hop-by-hop fields; dropping Content-Length on request
 * would leave its body unframed for the upstream, a second request hidden in the first).
 */
const END_TO_END = new Set(['content-length', 'host', 'content-type', 'content-encoding']);

/** Hop-by-hop response headers that never reach the client (RFC 9110 §7.6.1); `trailer` stays, trailers are passed on. */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'transfer-encoding', 'upgrade']);

/**
 * The upstream's response headers for the client: without hop-by-hop headers, including any the
 * upstream's own `Connection` header names, and with stored-credential secrets masked.
 */
export function responseHeaders(rawHeaders: string[], secrets?: string[]): string[] {
  let named: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== 10 || rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const t of rawHeaders[i + 1]!.split(',')) {
      const name = t.trim().toLowerCase();
      if (name) (named ??= new Set()).add(name);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (RESPONSE_HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    out.push(rawHeaders[i]!, secrets ? maskString(rawHeaders[i + 1]!, secrets) : rawHeaders[i + 1]!);
  }
  return out;
}

/** Trailer fields as raw pairs for `res.addTrailers`, with secrets masked (hop-by-hop names never appear in trailers). */
function trailerPairs(raw: string[], secrets?: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, secrets ? maskString(raw[i + 1]!, secrets) : raw[i + 1]!]);
  return out;
}

/** 65536 → "64 KiB". */
function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/** undici's raw header pairs as latin1 strings and as Node parses them (repeats joined with ', ', set-cookie an array). */
function parseRawHeaders(raw: Buffer[]): { rawStrings: string[]; parsed: IncomingHttpHeaders } {
  const rawStrings: string[] = new Array(raw.length);
  const parsed: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toString('latin1');
    const v = raw[i + 1]!.toString('latin1');
    rawStrings[i] = k;
    rawStrings[i + 1] = v;
    const lk = k.toLowerCase();
    const prev = parsed[lk];
    if (prev === undefined) parsed[lk] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else parsed[lk] = lk === 'set-cookie' ? [prev, v] : `${prev}, ${v}`;
  }
  if (parsed['set-cookie'] !== undefined && !Array.isArray(parsed['set-cookie'])) parsed['set-cookie'] = [parsed['set-cookie'] as unknown as string];
  return { rawStrings, parsed };
}

/** Passes a 103 Early Hints on to the client (its link and other end-to-end headers), unless the response has begun. */
function earlyHints(res: ServerResponse, headers: IncomingHttpHeaders): void {
  if (res.headersSent || typeof res.writeEarlyHints !== 'function' || headers.link === undefined) return; // Node sends hints only with a link
  const hints: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) hints[k] = v;
  try {
    res.writeEarlyHints(hints);
  } catch {
    // a malformed hint is dropped; the final response still goes out
  }
}

interface UpstreamFailure extends Error {
  status?: number;
  code?: string;
}

/** One direction of an exchange for the record: where its captured bytes go, and its counters. */
abstract class Tap {
  protected readonly kept: Buffer[] | null;
  protected captured = 0;

  constructor(protected readonly ex: Exchange, protected readonly isReq: boolean, protected readonly cap: number) {
    this.kept = cap > 0 ? [] : null;
    if (this.kept) {
      if (isReq) ex.requestCapture = this.kept;
      else ex.responseCapture = this.kept;
    }
  }

  protected count(n: number): void {
    if (this.isReq) this.ex.requestBytes += n;
    else this.ex.responseBytes += n;
  }

  /** The kept bytes are no longer the whole of it. */
  protected cut(): void {
    if (this.isReq) this.ex.requestCaptureComplete = false;
    else this.ex.responseCaptureComplete = false;
  }

  protected setSha256(digest: string): void {
    if (this.isReq) this.ex.requestSha256 = digest;
    else this.ex.responseSha256 = digest;
  }
}

/**
 * Watches a body as it passes: counts its bytes and, when recording is on, keeps its first `cap`
 * bytes for the log, with the SHA-256 of the whole body. A body that outgrows the cap is hashed as
 * it passes; one that fits is hashed in one call at its end (no hash object per request).
 */
class BodyTap extends Tap {
  private hash: Hash | null = null;

  push(c: Buffer): void {
    this.count(c.length);
    const kept = this.kept;
    if (!kept) return;
    if (this.hash) {
      this.hash.update(c);
      return;
    }
    if (this.captured + c.length <= this.cap) {
      kept.push(c);
      this.captured += c.length;
      return;
    }
    this.hash = createHash('sha256');
    for (const k of kept) this.hash.update(k);
    this.hash.update(c);
    if (this.captured < this.cap) kept.push(c.subarray(0, this.cap - this.captured));
    this.captured = this.cap;
    this.cut();
  }

  /**
   * The body ended (all of it passed). A body larger than the cap gets its hash now; one kept
   * whole is its own record, and the store derives its hash when it is read.
   */
  end(): void {
    if (this.hash) this.setSha256(this.hash.digest('hex'));
  }
}

const NEWLINE = Buffer.from('\n');

/**
 * A WebSocket's messages in one direction, for the record: their bytes counted, their payloads
 * hashed in order (the SHA-256 of what was sent), and kept one per line up to the capture cap, so
 * that a reader sees where each message ends (a message ends with a newline of its own only once).
 */
class MessageTap extends Tap {
  private readonly hash = createHash('sha256');

  push(msg: Buffer): void {
    this.count(msg.length);
    this.hash.update(msg);
    const kept = this.kept;
    if (!kept || this.captured >= this.cap) return;
    const line = msg.length > 0 && msg[msg.length - 1] === 0x0a ? msg : Buffer.concat([msg, NEWLINE]);
    const room = this.cap - this.captured;
    kept.push(line.length <= room ? line : line.subarray(0, room));
    this.captured += Math.min(line.length, room);
    if (line.length > room) this.cut();
  }

  end(): void {
    this.setSha256(this.hash.digest('hex'));
  }
}

function tapBody(stream: Readable, ex: Exchange, dir: 'request' | 'response', cap: number): void {
  const tap = new BodyTap(ex, dir === 'request', cap);
  stream.on('data', (c: Buffer) => tap.push(c));
  stream.once('end', () => tap.end());
}

/** One exchange's trip through the stages and, if allowed, to upstream and back. */
class Flow implements RequestIO {
  private clientGone: Array<() => void> = [];
  private finished = false;

  constructor(
    private readonly gw: Gateway,
    private readonly ex: Exchange,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly servername: string | null,
    /** The host the Host header names (validated), if it has a valid one. */
    private readonly hostNamed: string | null,
  ) {
    res.once('close', () => {
      if (!res.writableFinished) {
        if (!ex.error) ex.error = 'client closed the connection before the response completed';
        for (const cb of this.clientGone) cb();
      }
      this.done();
    });
  }

  get body(): Readable {
    return this.req;
  }

  private get opts(): GatewayOptions {
    return this.gw.options_;
  }

  run(): void {
    const misdirected = this.misdirected();
    if (misdirected) {
      this.opts.log.warn('request names another host than it goes to', { id: this.ex.id, authority: this.ex.authority });
      this.apply({ action: 'refuse', status: 421, message: misdirected });
      return;
    }
    decideRequest(this.opts.stages, this.ex, this, (o) => this.apply(o));
  }

  private apply(o: PipelineOutcome): void {
    if (o.action === 'handled') return;
    if (o.action === 'refuse') {
      this.ex.status = o.status;
      this.ex.error = o.message;
      this.req.resume(); // drain; nothing is forwarded
      sendError(this.res, o.status, o.message, o.status === 403 ? 'denied' : 'refused');
      return;
    }
    this.forward(null, null).catch(() => undefined);
  }

  private done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.upstreamPlace !== null) this.gw.giveUpstreamPlace(this.upstreamPlace);
    this.gw.finish(this.ex);
  }

  /** The agent-and-host key of the place this exchange holds while open upstream, if it holds one. */
  private upstreamPlace: string | null = null;

  onClientGone(cb: () => void): void {
    this.clientGone.push(cb);
  }

  /**
   * Airlock's own answer (a stage answered the agent itself: a held push's report-status, a refusal)
   * is recorded as any response: the status and headers the agent got, and its body through a tap.
   * Once it has begun, an upstream answer a stage fetches (`fetchUpstream`) is part of it, relayed by
   * the stage: it never replaces the status or headers the agent got, nor is it counted twice.
   */
  private answering = false;

  private answerTap(status: number, headers: Record<string, string>): BodyTap {
    const ex = this.ex;
    this.answering = true;
    ex.status = status;
    ex.responseHeaders = { ...headers };
    ex.responseBytes = 0;
    ex.responseCapture = null;
    ex.responseSha256 = null;
    ex.responseCaptureComplete = true;
    return new BodyTap(ex, false, this.opts.bodyCaptureBytes);
  }

  respond(status: number, headers: Record<string, string>, body: Buffer | string): void {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    if (this.res.headersSent) return void this.res.end();
    const all = { ...headers, 'content-length': String(buf.length) };
    const tap = this.answerTap(status, all);
    tap.push(buf);
    tap.end();
    this.res.writeHead(status, all);
    this.res.end(buf);
  }

  respondStream(status: number, headers: Record<string, string>): { write(chunk: Buffer): void; end(chunk?: Buffer): void } {
    const tap = this.answerTap(status, headers);
    this.res.writeHead(status, headers);
    this.res.flushHeaders();
    return {
      write: (c) => {
        tap.push(c);
        this.res.write(c);
      },
      end: (c) => {
        if (c) tap.push(c);
        tap.end();
        this.res.end(c);
      },
    };
  }

  forwardWith(body: Buffer | (() => Readable), bodyLength: number): Promise<void> {
    return this.forward(body, bodyLength);
  }

  fetchUpstream(body: Buffer | (() => Readable), bodyLength: number): Promise<IncomingMessage> {
    return this.openUpstream(body, bodyLength, this.answering);
  }

  /** Sends the request upstream (the client's stream, or a held body) and relays the answer. */
  private async forward(held: Buffer | (() => Readable) | null, heldLength: number | null): Promise<void> {
    const { ex, req, res } = this;
    if (held === null && this.upstreamPlace === null) {
      // A push approved by a person is not counted: it is forwarded whatever else the agent has open.
      const key = `${ex.agent.name}\0${ex.authority}`;
      if (!this.gw.takeUpstreamPlace(key)) {
        const message = `Airlock refused this request: agent ${ex.agent.name} already has ${this.opts.maxUpstreamRequestsPerAgentHost ?? DEFAULT_UPSTREAM_PER_AGENT_HOST} requests open to ${ex.authority} (Airlock's maxUpstreamRequestsPerAgentHost setting); the connections to a host are shared by every agent.`;
        ex.status = 503;
        ex.error = message;
        req.resume();
        sendError(res, 503, message, 'agent-host-limit', { 'retry-after': '1' });
        return;
      }
      this.upstreamPlace = key;
    }
    if (held === null && ex.scheme === 'https' && !this.credential && req.headers.expect === undefined) return this.relay();
    let upRes: IncomingMessage;
    try {
      upRes = await this.openUpstream(held, heldLength);
    } catch (e) {
      const x = e as UpstreamFailure;
      if (held === null) req.resume();
      sendError(res, x.status ?? 502, x.message, x.code ?? 'upstream-error');
      return;
    }
    const cred = this.credential;
    let headers = responseHeaders(upRes.rawHeaders, cred?.secrets);
    // An answer to a request that carried Airlock's credential is masked before the agent sees it,
    // which needs its bytes as sent: a content-encoded one (Airlock asked for identity; an upstream
    // may answer gzip all the same) is decoded on the way, one Airlock cannot decode is not relayed.
    let decoder: Transform | null = null;
    const encoding = String(upRes.headers['content-encoding'] ?? '').trim().toLowerCase();
    const hasBody = ex.method !== 'HEAD' && upRes.statusCode !== 204 && upRes.statusCode !== 304;
    if (cred && hasBody && encoding !== '' && encoding !== 'identity') {
      decoder = responseDecoder(encoding);
      if (!decoder) {
        upRes.resume();
        const message = `Airlock did not relay the answer from ${ex.authority}: it sent Airlock's stored credential there, and the answer's content coding (${encoding}) is one it cannot decode to check that the credential is not in it.`;
        ex.status = 502;
        ex.error = message;
        sendError(res, 502, message, 'upstream-encoding');
        return;
      }
      headers = headers.filter((_, i, a) => { const n = a[i - (i % 2)]!.toLowerCase(); return n !== 'content-encoding' && n !== 'content-length'; });
    }
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
    if (ex.responseHeaders?.['content-type']?.startsWith('text/event-stream')) res.flushHeaders();
    await new Promise<void>((resolve) => {
      upRes.once('end', () => {
        // Trailers (a chunked response's fields after its body) go out before the client's response ends.
        if (upRes.rawTrailers.length > 0) res.addTrailers(trailerPairs(upRes.rawTrailers, cred?.secrets));
        resolve();
      });
      upRes.once('close', resolve);
      upRes.on('error', () => res.destroy());
      if (decoder) {
        decoder.on('error', () => res.destroy()); // a body that does not decode is cut off, never relayed unchecked
        upRes.pipe(decoder).pipe(new MaskStream(cred!.secrets)).pipe(res);
      } else if (cred) upRes.pipe(new MaskStream(cred.secrets)).pipe(res);
      else upRes.pipe(res);
    });
  }

  /**
   * The hot path: the client's request relayed as it streams, through undici's dispatcher, its
   * answer written straight into the client's response (no ClientRequest/IncomingMessage pair).
   * Same headers, verification, timeouts and error sentences as `openUpstream`.
   */
  private relay(): Promise<void> {
    const { ex, req, res } = this;
    const opts = this.opts;
    const target = `${ex.host}:${ex.port}`;
    const flat: string[] = [];
    for (const [k, v] of upstreamHeaders(req.headers, req.rawHeaders)) flat.push(k, v);
    const reqTap = new BodyTap(ex, true, opts.bodyCaptureBytes);
    const resTap = new BodyTap(ex, false, opts.bodyCaptureBytes);
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    let body: AsyncIterable<Buffer> | null = null;
    if (hasBody) {
      // Tapped as undici pulls it (a 'data' listener would start the flow before undici reads).
      body = (async function* tapped() {
        for await (const c of req as AsyncIterable<Buffer>) {
          reqTap.push(c);
          yield c;
        }
        reqTap.end();
      })();
    } else {
      req.resume();
      reqTap.end();
    }
    ex.upstreamStartedAt = Date.now();
    return new Promise<void>((resolve) => {
      let abort: ((e?: Error) => void) | null = null;
      let headersDone = false;
      this.onClientGone(() => abort?.());
      opts.upstream.dispatcher.dispatch(
        {
          origin: `https://${ex.host.includes(':') ? `[${ex.host}]` : ex.host}:${ex.port}`,
          // The name the upstream is asked for and verified against: the tunnel's SNI (the host itself,
          // or for a tunnel to an address, the name the client sent), never the Host header, as on the
          // other path. Without one (a tunnel to an address, no SNI) the address itself: the connector
          // sends no SNI for an address and verifies the certificate against it (undici would otherwise
          // take the Host header's name).
          servername: this.servername ?? ex.host,
          path: ex.path,
          method: ex.method as Dispatcher.HttpMethod,
          headers: flat,
          body: body as Dispatcher.DispatchOptions['body'], // undici pulls async iterables with backpressure
        } as Dispatcher.DispatchOptions, // `servername` is a request option undici reads (lib/core/request.js) but does not type
        {
          onConnect: (a: (e?: Error) => void) => {
            abort = a;
            onUndiciSocket((t) => (ex.upstreamConnection = t));
          },
          onHeaders: (status: number, raw: Buffer[], resume: () => void, statusText: string) => {
            // undici reports informational responses here too. A 103's hints are passed on; the final
            // response follows (100 Continue is the client-side server's own business).
            if (status < 200) {
              if (status === 103) earlyHints(res, parseRawHeaders(raw).parsed);
              return true;
            }
            headersDone = true;
            ex.upstreamHeadersAt = Date.now();
            ex.status = status;
            const { rawStrings, parsed } = parseRawHeaders(raw);
            ex.responseHeaders = parsed;
            res.writeHead(status, statusText || undefined, responseHeaders(rawStrings));
            if (String(parsed['content-type'] ?? '').startsWith('text/event-stream')) res.flushHeaders();
            res.on('drain', resume);
            return true;
          },
          onData: (chunk: Buffer) => {
            resTap.push(chunk);
            return res.write(chunk);
          },
          onComplete: (trailers: Buffer[] | null) => {
            resTap.end();
            if (trailers && trailers.length > 0) res.addTrailers(trailerPairs(trailers.map((b) => b.toString('latin1'))));
            res.end();
            resolve();
          },
          onError: (err: Error) => {
            if (this.finished || res.destroyed) return resolve();
            const x = explainUpstreamError(fromUndiciError(err, opts.upstreamTimeoutMs), target, (err as { duringTls?: boolean }).duringTls === true, opts.upstream.maxHeaderBytes);
            ex.error = x.message;
            opts.log.info('upstream failed', { id: ex.id, target, code: (err as NodeJS.ErrnoException).code, status: x.status });
            if (headersDone) res.destroy();
            else {
              ex.status = x.status;
              if (body) req.resume();
              sendError(res, x.status, x.message, x.code);
            }
            resolve();
          },
        } as unknown as Dispatcher.DispatchHandler,
      );
    });
  }

  /**
   * A request goes to the host the policy decides on, the review shows and the record keeps. One that
   * reaches that host's address but names another in its TLS SNI or Host header could be routed
   * elsewhere by a shared front end (domain fronting): a push reviewed as going to one host would land
   * on another, and Airlock's credential for a host would go with it. Refused (421) before any stage
   * runs. A tunnel opened to an address (CONNECT 1.2.3.4) is the exception, unless a credential is
   * stored for it: the client chose the address, and the name it sends is what the upstream's
   * certificate is verified against.
   */
  private misdirected(): string | null {
    return misdirection(this.ex, this.servername, this.hostNamed, this.credential !== null);
  }

  private credentialLooked = false;
  private credentialValue: { header: string; secrets: string[] } | null = null;
  /** The stored upstream credential for this exchange's host, if any (looked up once). */
  get credential(): { header: string; secrets: string[] } | null {
    if (!this.credentialLooked) {
      this.credentialLooked = true;
      // Over HTTPS only: a stored `host` means port 443 and `http://host` (port 80) would otherwise match
      // it, sending the credential in clear text to whatever answers there.
      this.credentialValue = this.ex.scheme === 'https' ? this.opts.credentials?.resolve(this.ex.authority) ?? null : null;
    }
    return this.credentialValue;
  }

  /**
   * Opens the upstream request and resolves with its response (headers received).
   * Rejects with an UpstreamFailure carrying the status and sentence for the agent.
   */
  private openUpstream(held: Buffer | (() => Readable) | null, heldLength: number | null, insideAnswer = false): Promise<IncomingMessage> {
    const { ex, req } = this;
    const opts = this.opts;
    const isTls = ex.scheme === 'https';
    let outHeaders = upstreamHeaders(req.headers, req.rawHeaders);
    const cred = this.credential;
    if (cred) {
      // The agent's own Authorization (if any) never reaches upstream; Airlock's does.
      outHeaders = outHeaders.filter(([k]) => { const l = k.toLowerCase(); return l !== 'authorization' && l !== 'accept-encoding'; });
      outHeaders.push(['Authorization', cred.header], ['Accept-Encoding', 'identity']); // the answer is masked as it streams (forward)
    }
    // An HTTP/1.0 request may come without Host; it goes upstream as HTTP/1.1, which needs one: the
    // host the policy decided on (undici adds the same on the relay path).
    if (!outHeaders.some(([k]) => k.toLowerCase() === 'host')) outHeaders.unshift(['Host', hostPort(ex.host, ex.port, isTls ? 443 : 80)]);
    if (held !== null) {
      outHeaders = outHeaders.filter(([k]) => k.toLowerCase() !== 'content-length');
      outHeaders.push(['Content-Length', String(heldLength)]);
    } else if (req.headers['transfer-encoding'] !== undefined) {
      // The client's body was chunked (Transfer-Encoding is hop-by-hop, so not copied): it goes on
      // chunked, whatever the method. Node's client frames a GET, HEAD, DELETE or OPTIONS body only when
      // told; unframed, the upstream would read the body as the next request on the connection.
      outHeaders.push(['Transfer-Encoding', 'chunked']);
    }
    const flat: string[] = [];
    for (const [k, v] of outHeaders) flat.push(k, v);
    const target = `${ex.host}:${ex.port}`;
    return new Promise<IncomingMessage>((resolve, reject) => {
      ex.upstreamStartedAt = Date.now();
      const reqOpts: https.RequestOptions = {
        host: ex.host,
        port: ex.port,
        method: ex.method,
        path: ex.path,
        headers: flat as unknown as http.OutgoingHttpHeaders,
        agent: isTls ? opts.upstream.https : opts.upstream.http,
        setHost: false,
        timeout: opts.upstream.connectTimeoutMs,
        maxHeaderSize: opts.upstream.maxHeaderBytes,
      };
      if (isTls) reqOpts.servername = this.servername ?? undefined;
      // Plain HTTP through the upstream proxy: an absolute-form request to it (HTTPS tunnels in the agent).
      const viaProxy = isTls ? null : opts.upstream.via(ex.host);
      if (viaProxy) {
        Object.assign(reqOpts, { host: viaProxy.host, port: viaProxy.port, agent: opts.upstream.viaProxyHttp, path: `http://${hostPort(ex.host, ex.port, 80)}${ex.path}` });
        if (viaProxy.authorization) flat.push('Proxy-Authorization', viaProxy.authorization);
      }
      const up = (isTls ? https : http).request(reqOpts);
      let settled = false;
      let tlsUp = false;
      up.once('socket', (sock) => {
        // A connection the agent is opening now is timed here; one opened early or kept alive already is.
        if ((sock as Socket).connecting) timeConnection(sock as Socket, isTls);
        ex.upstreamConnection = claimConnectionTimings(sock);
        if (!isTls) return;
        if ((sock as tls.TLSSocket).encrypted && !(sock as Socket).connecting && (sock as tls.TLSSocket).authorized !== undefined) tlsUp = true;
        else sock.once('secureConnect', () => (tlsUp = true));
      });
      const fail = (err: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        // Before the response began, a connection error on the plain path is the upstream proxy's.
        if (viaProxy && !ex.upstreamHeadersAt) Object.assign(err, { viaProxy: viaProxy.display });
        const x = explainUpstreamError(err, target, isTls && !tlsUp, opts.upstream.maxHeaderBytes);
        if (!insideAnswer) ex.status = x.status; // inside Airlock's answer, the agent got that answer's status
        ex.error = x.message;
        opts.log.info('upstream failed', { id: ex.id, target, code: err.code, status: x.status });
        if (held === null) req.unpipe(up);
        up.destroy();
        reject(Object.assign(new Error(x.message), { status: x.status, code: x.code }));
      };
      up.on('error', fail);
      // Bounds the wait for the response to begin; once it has, it flows while both ends keep it.
      up.setTimeout(opts.upstreamTimeoutMs, () => fail(responseTimeout(opts.upstreamTimeoutMs)));
      this.onClientGone(() => up.destroy());
      up.on('response', (upRes) => {
        if (viaProxy && upRes.statusCode === 407) {
          // The upstream proxy's own challenge: the agent would take it for Airlock's and retry its agent token.
          upRes.resume();
          return fail(Object.assign(new Error(`Airlock's upstream proxy ${viaProxy.display} refused ${target}: 407 Proxy Authentication Required` +
            (viaProxy.authorization ? ': it did not accept the credentials in upstreamProxy.' : ': it wants credentials (http://USER:PASSWORD@HOST:PORT in upstreamProxy).')), { code: 'EUPSTREAMPROXY' }));
        }
        settled = true;
        up.setTimeout(0);
        ex.upstreamHeadersAt = Date.now();
        // Relayed inside Airlock's own answer (already recorded through its tap, as the agent gets it), or as it came.
        if (!insideAnswer) {
          ex.status = upRes.statusCode ?? 502;
          ex.responseHeaders = upRes.headers;
          tapBody(upRes, ex, 'response', opts.bodyCaptureBytes);
        }
        upRes.pause(); // the consumer (relay or hold stage) resumes it; nothing flows before it is attached
        resolve(upRes);
      });
      if (held !== null) {
        ex.requestBytes = heldLength ?? 0;
        if (Buffer.isBuffer(held)) up.end(held);
        else held().on('error', (e) => up.destroy(e)).pipe(up);
      } else {
        tapBody(req, ex, 'request', opts.bodyCaptureBytes);
        req.pipe(up);
      }
    });
  }
}


/** How many Host lines a request's raw headers hold. */
function hostLines(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

/** A decoder for a response's content coding (gzip, deflate, br), or null for one Airlock cannot decode. */
function responseDecoder(encoding: string): Transform | null {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return null;
  }
}

/** `host[:port]` for a URL (IPv6 in brackets, the scheme's default port left out). */
function hostPort(host: string, port: number, defaultPort: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}
