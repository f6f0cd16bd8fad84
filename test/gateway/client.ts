// Low-level clients for gateway tests: raw sockets to the proxy, CONNECT tunnels, TLS inside them, and a
// minimal HTTP response reader for answers a normal client would refuse to parse. Every wait is bounded.
import http, { type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import { runCommand, type RunResult } from '../helpers/run';
import { cleanCliEnv } from '../helpers/airlock';
import type WebSocketType from 'ws';

export interface RawResponse {
  status: number | null;
  headers: Record<string, string>;
  body: Buffer;
  /** Everything received, as latin1. */
  raw: string;
  /** The peer closed (or reset) the connection. */
  closed: boolean;
  timedOut: boolean;
}

/**
 * Reads one HTTP response from `socket`: headers, then a Content-Length body, a chunked body (up to the last
 * chunk), or everything until close. Resolves on completion, close, or after `timeoutMs`.
 */
export function readResponse(socket: net.Socket | tls.TLSSocket, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (closed: boolean, timedOut = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('end', onClose);
      socket.off('error', onClose);
      const raw = buf.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const head = end === -1 ? raw : raw.slice(0, end);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const headers: Record<string, string> = {};
      for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: m ? Number(m[1]) : null, headers, body: end === -1 ? Buffer.alloc(0) : buf.subarray(end + 4), raw, closed, timedOut });
    };
    const complete = (): boolean => {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return false;
      const head = buf.subarray(0, end).toString('latin1');
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const body = buf.subarray(end + 4);
      if (cl) return body.length >= Number(cl[1]);
      if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return body.includes('\r\n0\r\n\r\n') || body.subarray(0, 5).toString() === '0\r\n\r\n';
      if (/^HTTP\/1\.[01] (1\d\d|204|304)/.test(head)) return true;
      return false;
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (complete()) finish(false);
    };
    const onClose = () => finish(true);
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('end', onClose);
    socket.on('error', onClose);
    if (socket.destroyed) finish(true);
  });
}

export function connect(port: number, host = '127.0.0.1', timeoutMs = 5_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host });
    const t = setTimeout(() => { s.destroy(); reject(new Error(`connect ${host}:${port} timed out`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.removeAllListeners('error'); s.on('error', () => undefined); resolve(s); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

/** Opens a TCP connection to the proxy, writes `data`, and reads one response. The socket is destroyed afterwards. */
export async function rawExchange(port: number, data: string | Buffer, timeoutMs = 5_000): Promise<RawResponse> {
  const s = await connect(port);
  try {
    const r = readResponse(s, timeoutMs);
    s.write(data);
    return await r;
  } finally {
    s.destroy();
  }
}

export interface Tunnel {
  status: number;
  /** The CONNECT answer (status line and headers; for refusals also the body). */
  response: RawResponse;
  socket: net.Socket;
}

/** Sends `CONNECT authority` (with `Proxy-Authorization: auth` when given) and waits for the answer. */
export async function openTunnel(port: number, authority: string, auth?: string, timeoutMs = 5_000): Promise<Tunnel> {
  const socket = await connect(port);
  let buf = Buffer.alloc(0);
  const status = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error(`CONNECT ${authority}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1'));
      const st = m ? Number(m[1]) : 0;
      if (st === 200) {
        cleanup();
        const rest = buf.subarray(end + 4);
        buf = buf.subarray(0, end + 4);
        if (rest.length) socket.unshift(rest);
        resolve(st);
      } else {
        // Let readResponse-like completion happen: wait for close or the declared body.
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
        if (!cl || buf.length - end - 4 >= Number(cl[1])) { cleanup(); resolve(st); }
      }
    };
    const onClose = () => { cleanup(); resolve(buf.length ? Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1'))?.[1] ?? 0) : 0); };
    const cleanup = () => { clearTimeout(t); socket.off('data', onData); socket.off('close', onClose); };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`);
  });
  socket.pause();
  const raw = buf.toString('latin1');
  const end = raw.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of raw.slice(0, end === -1 ? undefined : end).split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, socket, response: { status, headers, body: end === -1 ? Buffer.alloc(0) : buf.subarray(end + 4), raw, closed: socket.destroyed, timedOut: false } };
}

/** CONNECT + TLS handshake with the gateway's leaf (verified against `ca`). */
export async function tlsTunnel(port: number, host: string, targetPort: number, auth: string, ca: string, servername?: string): Promise<tls.TLSSocket> {
  const authority = host.includes(':') ? `[${host}]:${targetPort}` : `${host}:${targetPort}`;
  const t = await openTunnel(port, authority, auth);
  if (t.status !== 200) {
    t.socket.destroy();
    throw new Error(`CONNECT ${authority} answered ${t.status}: ${t.response.raw}`);
  }
  return new Promise((resolve, reject) => {
    const sni = servername ?? (net.isIP(host) ? undefined : host);
    const s = tls.connect({ socket: t.socket, host: servername ?? host, ca, servername: sni, ALPNProtocols: ['http/1.1'] });
    const timer = setTimeout(() => { s.destroy(); reject(new Error('TLS handshake inside the tunnel timed out')); }, 10_000);
    s.once('secureConnect', () => { clearTimeout(timer); s.removeAllListeners('error'); s.on('error', () => undefined); resolve(s); });
    s.once('error', (e) => { clearTimeout(timer); t.socket.destroy(); reject(e); });
  });
}

export interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request over an already-open socket (a tunnel), parsed by Node's HTTP client. */
export function requestOver(socket: net.Socket | tls.TLSSocket, opts: { method?: string; path: string; host: string; headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number }): Promise<SimpleResponse> {
  socket.resume(); // openTunnel leaves the socket paused
  return new Promise((resolve, reject) => {
    const req = http.request({
      createConnection: () => socket,
      method: opts.method ?? 'GET',
      path: opts.path,
      headers: { host: opts.host, ...opts.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }); });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => { req.destroy(new Error(`request ${opts.path} timed out`)); }, opts.timeoutMs ?? 10_000);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(opts.body);
  });
}

/** GET/POST `https://host:port/path` through the proxy with a fresh tunnel. */
export async function viaProxy(proxyPort: number, auth: string, ca: string, target: { host: string; port: number; servername?: string },
  path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<SimpleResponse & { cert: tls.PeerCertificate }> {
  const s = await tlsTunnel(proxyPort, target.host, target.port, auth, ca, target.servername);
  try {
    const cert = s.getPeerCertificate();
    const hostHeader = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
    const r = await requestOver(s, { ...opts, path, host: hostHeader });
    return { ...r, cert };
  } finally {
    s.destroy();
  }
}

export interface CurlTarget {
  proxyUrl: string;
  caPath: string;
  user: string;
  token: string;
}

/** curl through the proxy: `-sS -x PROXY --proxy-user U:T --cacert CA ...args`, without inherited proxy variables. */
export function curlVia(gw: CurlTarget, args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return runCommand('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000) - 1), '-x', gw.proxyUrl, '--proxy-user', `${gw.user}:${gw.token}`,
    '--cacert', gw.caPath, ...args], { env: cleanCliEnv(), timeoutMs });
}

/**
 * A WebSocket to `url` over `socket` (a tunnel through the proxy, TLS inside it for wss://): sends `message`
 * once open and resolves with the first message back as text. Bounded by 10 s; the WebSocket is closed after.
 */
export async function wsEchoOver(socket: net.Socket | tls.TLSSocket, url: string, message: string): Promise<string> {
  const WebSocket = createRequire(import.meta.url)('ws') as typeof WebSocketType;
  const ws = new WebSocket(url, { createConnection: () => socket } as WebSocketType.ClientOptions);
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo within 10 s')), 10_000);
      ws.on('open', () => ws.send(message));
      ws.on('message', (d: Buffer) => { clearTimeout(timer); resolve(d.toString()); });
      ws.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
  } finally {
    ws.terminate();
  }
}
