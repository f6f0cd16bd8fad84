import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import tls, { createSecureContext, rootCertificates } from 'node:tls';
import type net from 'node:net';
import { isIP, type Socket } from 'node:net';
import dns from 'node:dns';
import type { Duplex } from 'node:stream';
import diagnostics_channel from 'node:diagnostics_channel';
import { Agent as UndiciAgent, type buildConnector } from 'undici';
import { AirlockError } from '../contract/errors';
import { pemCertificates, systemRoots, uniqueCertificates, type SystemTrustSource } from '../../certs/trust';
import type { ConnectionTimings } from '../exchange/exchange';
import type { UpstreamProxy } from './upstream-proxy';
import { isThisMachineAddress } from './this-machine';


const timingsOf = new WeakMap<object, ConnectionTimings>();
/** Connections whose timings an exchange has already reported (the first exchange on a connection does). */
const claimed = new WeakSet<object>();

/** Starts timing a connection that is being opened now (once: a connection already timed keeps its timings). */
export function timeConnection(sock: Socket | tls.TLSSocket, isTls: boolean): ConnectionTimings {
  const known = timingsOf.get(sock);
  if (known) return known;
  const t0 = performance.now();
  const timings: ConnectionTimings = { connectMs: null, tlsMs: null };
  timingsOf.set(sock, timings);
  sock.once('connect', () => {
    const t1 = performance.now();
    timings.connectMs = round(t1 - t0);
    if (isTls) sock.once('secureConnect', () => (timings.tlsMs = round(performance.now() - t1)));
  });
  return timings;
}

/**
 * The timings of a connection if this is its first exchange (then they are claimed), or null
 * (a kept-alive connection that an earlier exchange already reported, or one not opened here).
 */
export function claimConnectionTimings(sock: object): ConnectionTimings | null {
  const t = timingsOf.get(sock);
  if (!t || claimed.has(sock)) return null;
  claimed.add(sock);
  return t;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * undici does not hand the socket to a dispatch handler, but it calls the handler's onConnect and
 * then publishes `undici:client:sendHeaders` (with the socket) synchronously, one request at a
 * time: a handler that wants its connection's timings registers in onConnect.
 */
let awaitingSocket: ((t: ConnectionTimings | null) => void) | null = null;
diagnostics_channel.subscribe('undici:client:sendHeaders', (m: unknown) => {
  const cb = awaitingSocket;
  if (!cb) return;
  awaitingSocket = null;
  cb(claimConnectionTimings((m as { socket: object }).socket));
});
/** Called from a dispatch handler's onConnect: `cb` receives the timings when the request is written. */
export function onUndiciSocket(cb: (t: ConnectionTimings | null) => void): void {
  awaitingSocket = cb;
}

/**
 * Pooled, keep-alive upstream connections. TLS is always verified against the
 * system roots plus the extra CA files the user named; nothing here ever turns
 * verification off.
 */

type LookupAll = (hostname: string, options: dns.LookupAllOptions, cb: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;

/**
 * A `lookup` for a new upstream connection: when `port` is one of Airlock's own (read at connect
 * time) and the name resolves to this machine, the connection is refused. The policy's
 * builtin:deny-airlock-itself sees only the name, and a name such as the machine's own host name
 * (`vm` → 127.0.0.1 in /etc/hosts here) would otherwise reach the console past it.
 */
export function guardedLookup(port: number, ownPorts: ReadonlySet<number>, base: LookupAll = dns.lookup as unknown as LookupAll) {
  return (hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void): void => {
    base(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, options.all ? [] : '', undefined);
      if (ownPorts.has(port) && addresses.some((a) => isThisMachineAddress(a.address))) {
        const e: NodeJS.ErrnoException = Object.assign(new Error(`${hostname} resolves to this machine, and port ${port} is Airlock's own`), { code: 'EAIRLOCKSELF' });
        return callback(e, options.all ? [] : '', undefined);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', undefined);
      callback(null, first.address, first.family);
    });
  };
}

interface TunnelledTls {
  host: string;
  port: number;
  servername: string | undefined;
  secureContext: tls.SecureContext | undefined;
  timeoutMs: number;
  ownPorts: ReadonlySet<number>;
}

/**
 * TLS with `host:port` through the upstream proxy's CONNECT tunnel: verified against the same
 * roots as a direct connection (the upstream proxy only relays bytes). Timed like a direct one:
 * connect = TCP to the upstream proxy + its tunnel, tls = the handshake with the origin.
 */
function tlsThroughProxy(proxy: UpstreamProxy, o: TunnelledTls, cb: (err: NodeJS.ErrnoException | null, sock?: tls.TLSSocket) => void): void {
  const t0 = performance.now();
  rawThroughProxy(proxy, o.host, o.port, o.timeoutMs, o.ownPorts, (err, raw) => {
    if (err || !raw) return cb(err);
    raw.setKeepAlive(true, 60_000);
    const t1 = performance.now();
    const timings: ConnectionTimings = { connectMs: round(t1 - t0), tlsMs: null };
    const sock = tls.connect({
      socket: raw, host: o.host, servername: o.servername ?? (isIP(o.host) ? undefined : o.host),
      secureContext: o.secureContext, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'],
    });
    timingsOf.set(sock, timings);
    const left = Math.max(1, o.timeoutMs - (t1 - t0));
    const timer = setTimeout(() => sock.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), left);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      timings.tlsMs = round(performance.now() - t1);
      cb(null, sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      cb(Object.assign(e, { duringTls: true, viaProxy: proxy.display }));
    });
  });
}

/**
 * A tunnel to `host:port` through the upstream proxy. A name on one of Airlock's own ports is
 * checked first, as guardedLookup checks a direct connection.
 */
function rawThroughProxy(proxy: UpstreamProxy, host: string, port: number, timeoutMs: number, ownPorts: ReadonlySet<number>,
  cb: (err: NodeJS.ErrnoException | null, sock?: Socket) => void): void {
  if (!ownPorts.has(port)) return proxy.tunnel(host, port, timeoutMs, cb);
  guardedLookup(port, ownPorts)(host, {}, (err) => (err ? cb(err) : proxy.tunnel(host, port, timeoutMs, cb)));
}

/**
 * An https.Agent that can open (and verify) a connection before the first
 * request needs it: the gateway calls `preconnect` when a CONNECT arrives, so
 * the upstream handshake overlaps the client's handshake with Airlock.
 * Only TCP + TLS happen early; no request byte is sent before the stages allow it.
 */
class PreconnectAgent extends https.Agent {
  private readonly early = new Map<string, { socket: Promise<tls.TLSSocket | null>; timer: NodeJS.Timeout }>();

  constructor(opts: https.AgentOptions, private readonly ownPorts: ReadonlySet<number>, private readonly proxy: UpstreamProxy | null, private readonly connectTimeoutMs: number) {
    super(opts);
  }

  /** The upstream proxy to reach `host` through, or null (none set, or `host` is in upstreamNoProxy). */
  via(host: string): UpstreamProxy | null {
    return this.proxy && !this.proxy.bypass(host) ? this.proxy : null;
  }

  private static key(host: string, port: number, servername: string | undefined): string {
    return `${host}:${port}:${servername ?? ''}`;
  }

  preconnect(host: string, port: number, servername: string | undefined, timeoutMs: number): void {
    const key = PreconnectAgent.key(host, port, servername);
    if (this.early.has(key) || this.early.size > 256) return;
    const opts = this.options as https.AgentOptions;
    const proxy = this.via(host);
    const socket = new Promise<tls.TLSSocket | null>((resolve) => {
      if (proxy) {
        const o = { host, port, servername, secureContext: opts.secureContext, timeoutMs, ownPorts: this.ownPorts };
        return tlsThroughProxy(proxy, o, (err, s) => {
          if (err || !s) return resolve(null);
          s.setNoDelay(true);
          s.once('close', () => resolve(null));
          resolve(s);
        });
      }
      const s = tls.connect({ host, port, servername, secureContext: opts.secureContext, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'], lookup: guardedLookup(port, this.ownPorts) });
      timeConnection(s, true);
      s.setNoDelay(true);
      s.setKeepAlive(true, 60_000);
      const t = setTimeout(() => s.destroy(), timeoutMs);
      s.once('secureConnect', () => { clearTimeout(t); resolve(s); });
      s.once('error', () => { clearTimeout(t); s.destroy(); resolve(null); });
      s.once('close', () => resolve(null));
    });
    // Unused early connections are closed after a while.
    const timer = setTimeout(() => {
      this.early.delete(key);
      void socket.then((s) => s?.destroy());
    }, 10_000);
    timer.unref();
    this.early.set(key, { socket, timer });
  }

  /** The verified connection opened early for this target, if there is one (taken: used once). */
  takeEarly(host: string, port: number, servername: string | undefined): Promise<tls.TLSSocket | null> | null {
    const key = PreconnectAgent.key(host, port, servername);
    const early = this.early.get(key);
    if (!early) return null;
    this.early.delete(key);
    clearTimeout(early.timer);
    return early.socket;
  }

  override createConnection(given: tls.ConnectionOptions & { host?: string; port?: number }, cb: (err: Error | null, s?: Duplex) => void): Duplex | undefined {
    const options = { ...given, lookup: guardedLookup(Number(given.port) || 443, this.ownPorts) };
    const key = PreconnectAgent.key(String(options.host), Number(options.port), options.servername);
    const early = this.early.get(key);
    const proxy = this.via(String(options.host));
    const open = (): Duplex | undefined => {
      if (!proxy) return (https.Agent.prototype as unknown as { createConnection: (o: unknown, c: unknown) => Duplex }).createConnection.call(this, options, cb);
      const o = { host: String(options.host), port: Number(options.port) || 443, servername: options.servername || undefined, secureContext: options.secureContext, timeoutMs: this.connectTimeoutMs, ownPorts: this.ownPorts };
      tlsThroughProxy(proxy, o, (err, s) => (err ? cb(err) : cb(null, s)));
      return undefined;
    };
    if (!early) return open();
    this.early.delete(key);
    clearTimeout(early.timer);
    void early.socket.then((s) => {
      if (s && !s.destroyed && s.authorized) cb(null, s);
      else if (proxy) open();
      else {
        const fresh = tls.connect(options);
        timeConnection(fresh, true);
        cb(null, fresh);
      }
    });
    return undefined;
  }

  override destroy(): void {
    for (const { socket, timer } of this.early.values()) {
      clearTimeout(timer);
      void socket.then((s) => s?.destroy());
    }
    this.early.clear();
    super.destroy();
  }
}

export interface UpstreamPoolOptions {
  /** Extra CA files trusted for upstream TLS (`--upstream-ca`). */
  extraCaFiles: string[];
  connectTimeoutMs: number;
  /** Time an upstream has to begin its response (default 10 min). */
  responseTimeoutMs?: number;
  systemTrust?: SystemTrustSource;
  /** Airlock's own listening ports, filled in as they open. */
  ownPorts?: ReadonlySet<number>;
  /** Largest response head accepted from an upstream (default 256 KiB). */
  maxHeaderBytes?: number;
  /**
   * Longest an idle upstream connection is kept, whatever the server's `Keep-Alive: timeout=` hint
   * says (default 10 s; undici's own cap is 600 s). Each idle TLS connection holds ~100 KB of native
   * memory and ~26 KB of heap: after a burst to many hosts, a 120 s hint kept 1 243 of them, and
   * the gateway's RSS at 374 MB, a minute after the traffic stopped.
   */
  idleConnectionMs?: number;
  /** The proxy upstream connections go through (upstreamProxy), or null: direct. */
  proxy?: UpstreamProxy | null;
  /**
   * Receives a sentence for each thing the user should know that does not stop the start (an
   * `extraCaFiles` file holding a certificate of `systemTrust.distrust`, which is left out).
   * Default: `process.emitWarning`.
   */
  onWarning?: (message: string) => void;
}

/**
 * OpenSSL security level 2 for upstream TLS (Node's own default cipher list, so nothing else
 * changes): certificates with RSA/DSA/DH keys under 2048 bits or ECC keys under 224 bits, and
 * signatures by SHA-1 or weaker, are refused, as curl, git and python on a current Linux refuse
 * them. Node's bundled OpenSSL defaults to level 1, which accepted a 1024-bit RSA upstream.
 * TLS 1.3 suites are unaffected (all are above level 2).
 */
export const UPSTREAM_CIPHERS = `${tls.DEFAULT_CIPHERS}:@SECLEVEL=2`;

export class UpstreamPool {
  readonly connectTimeoutMs: number;
  readonly http: http.Agent;
  readonly https: PreconnectAgent;
  /**
   * HTTPS requests whose client stream is relayed as it comes (the hot path) go through undici:
   * it costs about 40 µs less CPU per request than http.request + https.Agent (docs/decisions.md).
   * Same verification (the same secure context, rejectUnauthorized), same early connections.
   */
  readonly dispatcher: UndiciAgent;
  readonly ca: string[];
  /** The upstream proxy (upstreamProxy), or null. */
  readonly proxy: UpstreamProxy | null;
  /** Plain HTTP requests sent to the upstream proxy in absolute form (its own keep-alive pool). */
  readonly viaProxyHttp: http.Agent;

  /** Largest response head (status line + headers) accepted from an upstream. */
  readonly maxHeaderBytes: number;

  /**
   * Upstream TLS trusts Node's built-in roots, the system's store and NODE_EXTRA_CA_CERTS (what a
   * direct connection from this machine trusts: certs/trust.ts) and `extraCaFiles`.
   * `ownPorts`: Airlock's own listening ports (filled in as they open); a DNS name that resolves to
   * this machine is refused on them (see guardedLookup).
   */
  constructor(o: UpstreamPoolOptions) {
    const { extraCaFiles, connectTimeoutMs, systemTrust = {}, ownPorts = new Set() } = o;
    const proxy = (this.proxy = o.proxy ?? null);
    const timeoutMs = o.responseTimeoutMs ?? 600_000;
    this.connectTimeoutMs = connectTimeoutMs;
    this.maxHeaderBytes = o.maxHeaderBytes ?? 256 * 1024;
    const extra = extraCaFiles.map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch (e) {
        throw new AirlockError('bad-request', `cannot read upstream CA file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    });
    for (const [i, pem] of extra.entries()) {
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new AirlockError('bad-request', `upstream CA file ${extraCaFiles[i]} holds no PEM certificate`);
      }
    }
    // Never Airlock's own CA (systemTrust.distrust), wherever it was named: trusted upstream, an
    // agent could present a certificate Airlock itself issued. systemRoots leaves it out of the
    // system store and NODE_EXTRA_CA_CERTS; here it is left out of the --upstream-ca files.
    const never = new Set((systemTrust.distrust ?? []).flatMap(pemCertificates).map(certBody));
    const warn = o.onWarning ?? ((m: string) => process.emitWarning(m, 'AirlockWarning'));
    const extraCerts = extra.flatMap((pem, i) => pemCertificates(pem).filter((c) => {
      if (!never.has(certBody(c))) return true;
      warn(`upstream CA file ${extraCaFiles[i]} holds Airlock's own CA (SHA-256 ${fingerprintOf(c)}); it is not trusted for upstream connections. ` +
        'Remove it from that file: --upstream-ca names the CAs of real upstreams (a company CA, a TLS-inspecting proxy\'s root).');
      return false;
    }));
    this.ca = uniqueCertificates([...rootCertificates, ...systemRoots(systemTrust), ...extraCerts]);
    const common = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const, noDelay: true };
    this.http = new http.Agent(common);
    this.viaProxyHttp = new http.Agent(common);
    const plainConnect = this.http.createConnection.bind(this.http) as (o: net.NetConnectOpts, cb?: unknown) => Duplex;
    (this.http as unknown as { createConnection: unknown }).createConnection = (o: net.TcpNetConnectOpts, cb?: (err: Error | null, s?: Duplex) => void) => {
      const port = Number(o.port) || 80;
      // Through the upstream proxy this agent carries only WebSockets (ws://), in a tunnel as browsers do;
      // plain HTTP requests go to it in absolute form (viaProxyHttp).
      const via = cb ? this.via(String(o.host)) : null;
      if (via && cb) {
        rawThroughProxy(via, String(o.host), port, connectTimeoutMs, ownPorts, (err, s) => (err ? cb(err) : cb(null, s)));
        return undefined;
      }
      return plainConnect({ ...o, lookup: guardedLookup(port, ownPorts) }, cb);
    };
    // A prebuilt secure context, not `ca`: https.Agent puts `ca` into the pool key string it
    // builds for every request (150 root certificates concatenated each time: 30% of CPU).
    // The one context every upstream TLS connection uses (undici's connector, https.Agent, early
    // connections, tunnels through the upstream proxy).
    const secureContext = createSecureContext({ ca: this.ca, ciphers: UPSTREAM_CIPHERS });
    this.https = new PreconnectAgent({ ...common, secureContext, rejectUnauthorized: true }, ownPorts, proxy, connectTimeoutMs);
    const connect: buildConnector.connector = (o, cb) => {
      // An address is no server name (TLS SNI carries names only): verified against the address.
      const servername = o.servername && !isIP(o.servername) ? o.servername : undefined;
      const port = Number(o.port) || 443;
      const open = (): tls.TLSSocket => {
        const via = this.via(o.hostname);
        if (via) {
          tlsThroughProxy(via, { host: o.hostname, port, servername, secureContext, timeoutMs: connectTimeoutMs, ownPorts }, (err, s) => {
            if (err || !s) return cb(err ?? new Error('no socket'), null);
            s.setNoDelay(true);
            cb(null, s);
          });
          return undefined as unknown as tls.TLSSocket;
        }
        const sock = tls.connect({ host: o.hostname, port, servername, secureContext, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'], lookup: guardedLookup(port, ownPorts) });
        timeConnection(sock, true);
        sock.setNoDelay(true);
        sock.setKeepAlive(true, 60_000);
        const t = setTimeout(() => sock.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), connectTimeoutMs);
        sock.once('secureConnect', () => { clearTimeout(t); cb(null, sock); });
        // Failed before the handshake finished: the explanation says so (e.g. a port that does not speak TLS).
        sock.once('error', (e) => { clearTimeout(t); cb(Object.assign(e, { duringTls: true }), null); });
        return sock;
      };
      const early = this.https.takeEarly(o.hostname, port, servername);
      if (!early) return open();
      void early.then((s) => (s && !s.destroyed && s.authorized ? cb(null, s) : open()));
      return undefined as unknown as tls.TLSSocket;
    };
    this.dispatcher = new UndiciAgent({
      connect,
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: Math.min(4000, o.idleConnectionMs ?? 4000),
      keepAliveMaxTimeout: o.idleConnectionMs ?? 10_000,
      headersTimeout: timeoutMs,
      maxHeaderSize: this.maxHeaderBytes,
      // A response that has begun flows as long as both ends keep it (event streams may be quiet
      // for hours); a peer that vanished is found by TCP keepalive, and the agent leaving aborts it.
      bodyTimeout: 0,
    });
  }

  /** The upstream proxy to reach `host` through, or null (none set, or `host` is in upstreamNoProxy). */
  via(host: string): UpstreamProxy | null {
    return this.https.via(host);
  }

  /** Opens and verifies the upstream TLS connection for a new tunnel ahead of its first request. */
  preconnect(host: string, port: number, servername: string | undefined): void {
    this.https.preconnect(host, port, servername, this.connectTimeoutMs);
  }

  /** Closes the connection opened early for a tunnel that turned out not to speak TLS. */
  discardEarly(host: string, port: number, servername: string | undefined): void {
    void this.https.takeEarly(host, port, servername)?.then((s) => s?.destroy());
  }

  destroy(): void {
    this.http.destroy();
    this.viaProxyHttp.destroy();
    this.https.destroy();
    void this.dispatcher.destroy().catch(() => undefined);
  }
}

/** A certificate's base64 body: the same certificate with other line ends compares equal. */
function certBody(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----|\s/g, '');
}

function fingerprintOf(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return 'unparseable';
  }
}

/**
 * Node's codes for a certificate that failed verification. Node reports the X.509 errors it has no
 * name for as `UNSPECIFIED` (only ever a verification result): among them a key or a signature
 * digest too weak for the security level (`EE certificate key too weak`, `CA certificate key too
 * weak`, `CA signature digest algorithm too weak`).
 */
const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REVOKED', 'INVALID_CA', 'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'CERT_CHAIN_TOO_LONG', 'INVALID_PURPOSE',
  'CERT_REJECTED', 'PATH_LENGTH_EXCEEDED', 'UNSPECIFIED',
]);

const TOO_WEAK = /key too weak|key too small|digest algorithm too weak|md too weak/i;

/** undici's own errors as the Node errors the explanations below know (a connector's errors pass as they are). */
export function fromUndiciError(err: Error & { code?: string; cause?: unknown }, responseTimeoutMs?: number): NodeJS.ErrnoException {
  const code = err.code ?? '';
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return responseTimeout(responseTimeoutMs);
  if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
    const cause = err.cause as NodeJS.ErrnoException | undefined;
    return Object.assign(new Error(cause?.message ?? 'socket hang up'), { code: cause?.code && !cause.code.startsWith('UND_') ? cause.code : 'ECONNRESET' });
  }
  if (code === 'UND_ERR_HEADERS_OVERFLOW') return Object.assign(new Error(err.message), { code: 'HPE_HEADER_OVERFLOW' });
  if (code.startsWith('HPE_') || err.name === 'HTTPParserError') return Object.assign(new Error(err.message), { code: code.startsWith('HPE_') ? code : 'HPE_INVALID' });
  return err as NodeJS.ErrnoException;
}

/** The error for an upstream that did not begin its response within `timeoutMs` (upstreamTimeoutMs). */
export function responseTimeout(timeoutMs?: number): NodeJS.ErrnoException & { timeoutMs?: number } {
  return Object.assign(new Error('upstream timeout'), { code: 'upstream-timeout', timeoutMs });
}

function formatDuration(ms: number): string {
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** Turns an upstream failure into the status and one plain sentence the agent sees. */
export function explainUpstreamError(err: NodeJS.ErrnoException, target: string, duringTls = false, maxHeaderBytes?: number): { status: number; code: string; message: string } {
  const code = err.code ?? 'EUNKNOWN';
  // Set when the connection went through the upstream proxy (upstreamProxy): the sentence names it.
  const via = (err as { viaProxy?: string }).viaProxy;
  if (TLS_VERIFY_CODES.has(code)) {
    return { status: 502, code: 'upstream-tls-unverified', message:
      `Airlock did not forward this request: the TLS certificate of ${target} could not be verified (${code}: ${err.message}). ` +
      (TOO_WEAK.test(err.message)
        ? 'Its key or signature is too weak to trust (an RSA key under 2048 bits, or a SHA-1 signature), as curl and git on current systems refuse it. The upstream needs a stronger certificate.'
        : via
        ? `It was reached through the upstream proxy ${via}: if that proxy inspects TLS, or this upstream uses a private CA, start Airlock with --upstream-ca FILE.`
        : 'If this upstream uses a private CA, start Airlock with --upstream-ca FILE.') };
  }
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|unknown protocol/i.test(err.message)) {
    return { status: 502, code: 'upstream-not-tls', message: `Airlock could not open TLS to ${target}: it does not speak TLS on that port (${err.message}).` };
  }
  if (code === 'EUPSTREAMPROXY') return { status: (err as { status?: number }).status ?? 502, code: 'upstream-proxy', message: err.message };
  if (via && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EPIPE)$/.test(code) && !duringTls) {
    return { status: code === 'ETIMEDOUT' ? 504 : 502, code: 'upstream-proxy', message: `Airlock could not reach ${target} through its upstream proxy ${via} (${code}).` };
  }
  if (code === 'EAIRLOCKSELF') {
    return { status: 403, code: 'denied', message: `Airlock denied this request: ${err.message}; agents cannot reach Airlock's own proxy or console (builtin:deny-airlock-itself).` };
  }
  if (code === 'ECONNREFUSED') return { status: 502, code: 'upstream-refused', message: `Airlock could not connect to ${target}: connection refused.` };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { status: 502, code: 'upstream-dns', message: `Airlock could not resolve ${target} (${code}).` };
  if (code === 'upstream-timeout') {
    const ms = (err as { timeoutMs?: number }).timeoutMs;
    const within = ms === undefined ? 'in time' : `within ${formatDuration(ms)}`;
    return { status: 504, code: 'upstream-timeout', message: `${target} did not begin its response ${within} (Airlock's upstreamTimeoutMs setting).` };
  }
  if (code === 'ETIMEDOUT') return { status: 504, code: 'upstream-timeout', message: `Airlock could not connect to ${target}: the connection timed out.` };
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/.test(err.message)) {
    const hint = duringTls ? ' during the TLS handshake: it may not speak TLS on that port' : '';
    return { status: 502, code: 'upstream-reset', message: `${target} closed the connection before answering${hint} (${code}).` };
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    const limit = maxHeaderBytes ? ` (${Math.round(maxHeaderBytes / 1024)} KiB, Airlock's upstreamMaxHeaderBytes setting)` : ` (Airlock's upstreamMaxHeaderBytes setting)`;
    return { status: 502, code: 'upstream-bad-response', message: `${target} sent response headers larger than Airlock accepts${limit}.` };
  }
  if (code === 'HPE_INVALID_CONSTANT' || code.startsWith('HPE_')) {
    return { status: 502, code: 'upstream-bad-response', message: `${target} sent a response that is not valid HTTP (${code}).` };
  }
  return { status: 502, code: 'upstream-error', message: `Airlock could not complete the request to ${target}: ${err.message} (${code}).` };
}
