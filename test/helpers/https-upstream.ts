// A real upstream for proxy integration tests: HTTPS (test PKI) or plain HTTP on 127.0.0.1:0,
// with a fixed set of routes, a WebSocket echo on /ws, and a record of every request received.
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { createTestPki, type TestPki } from './test-ca';


export interface RecordedRequest {
  method: string;
  /** Request target as received (path + query). */
  url: string;
  headers: IncomingHttpHeaders;
  /** Raw header list as received (name, value, name, value...). */
  rawHeaders: string[];
  body: Buffer;
}

export interface Upstream {
  /** e.g. https://127.0.0.1:PORT (http:// when tls:false); no trailing slash. */
  url: string;
  /** ws(s)://127.0.0.1:PORT/ws */
  wsUrl: string;
  host: '127.0.0.1';
  port: number;
  tls: 'good' | 'bad' | false;
  pki: TestPki;
  /** Every request received (body fully read), in arrival order. WebSocket upgrades are recorded too (empty body). */
  requests: RecordedRequest[];
  /** Closes the server and destroys every open socket. Idempotent. */
  close(): Promise<void>;
}

export interface UpstreamOptions {
  /** 'good' (default): leaf signed by the test CA; 'bad': self-signed leaf; false: plain HTTP. */
  tls?: 'good' | 'bad' | false;
  pki?: TestPki;
  /** WebSocket implementation for /ws: 'ws' package when installed (default), or the built-in minimal RFC 6455 echo. */
  websocket?: 'ws' | 'builtin';
}

const MAX_BYTES = 50 * 1024 * 1024;
const PATTERN = (() => {
  const b = Buffer.allocUnsafe(64 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  return b;
})();

/** The bytes /bytes?n=N sends: byte i is (i & 0xff). */
export function expectedBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = i & 0xff;
  return out;
}

export function sha256Hex(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

/** Writes `n` pattern bytes honouring back-pressure. */
function writeBytes(res: ServerResponse, n: number): void {
  let left = n;
  const pump = (): void => {
    while (left > 0) {
      const len = Math.min(left, PATTERN.length);
      left -= len;
      const ok = res.write(len === PATTERN.length ? PATTERN : PATTERN.subarray(0, len));
      if (!ok && left > 0) { res.once('drain', pump); return; }
    }
    res.end();
  };
  pump();
}

// ---------------------------------------------------------------- WebSocket

interface WsLike { on(ev: string, fn: (...a: any[]) => void): void; send(d: unknown, o?: unknown): void; terminate(): void }
interface WssLike {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WsLike) => void): void;
  clients: Set<WsLike>;
  close(): void;
}

function loadWs(): { WebSocketServer: new (o: object) => WssLike } | null {
  try {
    const req = createRequire(import.meta.url);
    const mod = req('ws') as { WebSocketServer?: new (o: object) => WssLike; Server?: new (o: object) => WssLike };
    const WebSocketServer = mod.WebSocketServer ?? mod.Server;
    return WebSocketServer ? { WebSocketServer } : null;
  } catch {
    return null;
  }
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Minimal RFC 6455 echo (fallback when 'ws' is not installed): masked frames <= 64 KiB, text/binary/ping/close. */
function handRolledWsEcho(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || req.headers['sec-websocket-version'] !== '13') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buf = head.length ? Buffer.from(head) : Buffer.alloc(0);
  const frame = (opcode: number, payload: Buffer): Buffer => {
    const len = payload.length;
    const hdr = len < 126 ? Buffer.from([0x80 | opcode, len])
      : Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]);
    return Buffer.concat([hdr, payload]);
  };
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0]!; const b1 = buf[1]!;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f; let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { socket.destroy(); return; } // > 64 KiB unsupported
      if (!masked || len > 64 * 1024) { socket.destroy(); return; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
      buf = buf.subarray(off + 4 + len);
      if (opcode === 0x8) { socket.end(frame(0x8, payload.subarray(0, 2))); return; }
      if (opcode === 0x9) socket.write(frame(0xa, payload));
      else if (opcode === 0x1 || opcode === 0x2) socket.write(frame(opcode, payload));
    }
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

// ---------------------------------------------------------------- server

export async function startUpstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const tls = opts.tls === undefined ? 'good' : opts.tls;
  const pki = opts.pki ?? (await createTestPki());
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Duplex>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    readBody(req).then((body) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      route(req, res, body);
    }, () => { res.destroy(); });
  };

  const route = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const path = u.pathname;
    const text = (status: number, s: string, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(s), ...extra });
      res.end(method === 'HEAD' ? undefined : s);
    };
    const isGet = method === 'GET' || method === 'HEAD';

    if (isGet && path === '/hello') return text(200, 'hello');
    if (isGet && path === '/bytes') {
      const n = Number(u.searchParams.get('n') ?? '0');
      if (!Number.isInteger(n) || n < 0 || n > MAX_BYTES) return text(400, 'n must be an integer in 0..52428800');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      if (method === 'HEAD') return void res.end();
      return writeBytes(res, n);
    }
    if (method === 'POST' && path === '/echo') {
      res.writeHead(200, {
        'content-type': req.headers['content-type'] ?? 'application/octet-stream',
        'content-length': body.length,
        'x-body-sha256': sha256Hex(body),
      });
      return void res.end(body);
    }
    if (isGet && path === '/headers') {
      const s = JSON.stringify(req.headers);
      return text(200, s, { 'content-type': 'application/json' });
    }
    if (isGet && path === '/slow') {
      const ms = Math.max(0, Math.min(Number(u.searchParams.get('ms') ?? '1000') || 0, 120_000));
      later(ms, () => { if (!res.destroyed) text(200, 'slow'); });
      return;
    }
    if (isGet && path === '/sse') {
      // ?gap=MS: quiet time between events (default 50 ms), as an event stream idle for a while
      const gap = Math.max(0, Math.min(Number(u.searchParams.get('gap') ?? '50') || 0, 60_000));
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.flushHeaders();
      let i = 0;
      const next = (): void => {
        if (res.destroyed) return;
        i++;
        res.write(`id: ${i}\nevent: message\ndata: event ${i}\n\n`);
        if (i < 3) later(gap, next);
        else res.end();
      };
      next();
      return;
    }
    if (isGet && path === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }); // no content-length => chunked
      res.flushHeaders();
      const parts = ['chunk-1\n', 'chunk-2\n', 'chunk-3\n'];
      let i = 0;
      const next = (): void => {
        if (res.destroyed) return;
        res.write(parts[i++]!);
        if (i < parts.length) later(20, next);
        else res.end();
      };
      next();
      return;
    }
    if (isGet && path === '/big-header') {
      // ?n=BYTES: one response header of that size (as some sites send large CSP, Link or cookie headers)
      const n = Math.max(0, Math.min(Number(u.searchParams.get('n') ?? '0') || 0, 1024 * 1024));
      return text(200, 'big header', { 'x-big': 'h'.repeat(n) });
    }
    if (isGet && path === '/trailers') {
      // A chunked body followed by a trailer field (declared in Trailer, as RFC 9110 asks).
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', trailer: 'x-checksum' });
      res.write('body with a trailer\n');
      res.addTrailers({ 'x-checksum': sha256Hex('body with a trailer\n') });
      return void res.end();
    }
    if (isGet && path === '/connection-named') {
      // A response header the upstream marks hop-by-hop by naming it in Connection (RFC 9110 §7.6.1).
      return text(200, 'connection-named', { connection: 'x-hop-only', 'x-hop-only': 'for the next hop only', 'x-end-to-end': 'kept' });
    }
    if (isGet && path === '/early-hints') {
      // A 103 before the final response (undici and Node's client both see informational responses).
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      return text(200, 'after hints');
    }
    const st = /^\/status\/(\d{3})$/.exec(path);
    if (st) {
      const code = Number(st[1]);
      if (code < 200 || code > 599) return text(400, 'status must be 200..599');
      if (code === 204 || code === 304) { res.writeHead(code); return void res.end(); }
      return text(code, `status ${code}`);
    }
    if (isGet && path === '/echo-auth-encoded') {
      // ?enc=gzip|deflate|br|x-unknown: the Authorization received, JSON in that content coding, whatever the
      // request's Accept-Encoding said (as a misbehaving upstream or a CDN does); JSON-escaped like PHP ('\/').
      const enc = u.searchParams.get('enc') ?? 'gzip';
      const json = Buffer.from(JSON.stringify({ youSent: req.headers.authorization ?? '', acceptEncoding: req.headers['accept-encoding'] ?? null }).replace(/\//g, '\\/'));
      const coded = enc === 'gzip' ? gzipSync(json) : enc === 'deflate' ? deflateSync(json) : enc === 'br' ? brotliCompressSync(json) : json;
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': enc, 'content-length': coded.length });
      return void res.end(method === 'HEAD' ? undefined : coded);
    }
    if (isGet && path === '/echo-auth') {
      const auth = req.headers.authorization ?? '';
      return text(200, `authorization: ${auth}\n`);
    }
    return text(404, 'not found');
  };

  let server: Server;
  // Large request heads are accepted (1 MiB), so that a proxy's own limit is what a test sees.
  if (tls === false) {
    server = createHttpServer({ maxHeaderSize: 1024 * 1024 }, handler);
  } else {
    server = createHttpsServer({
      maxHeaderSize: 1024 * 1024,
      key: tls === 'good' ? pki.serverKeyPem : pki.badKeyPem,
      cert: tls === 'good' ? pki.serverCertPem : pki.badCertPem,
    }, handler);
  }
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.on('tlsClientError', (_e: Error, s: Duplex) => s.destroy());
  server.on('clientError', (_e: Error, s: Duplex) => s.destroy());

  const wsLib = opts.websocket === 'builtin' ? null : loadWs();
  const wss = wsLib ? new wsLib.WebSocketServer({ noServer: true, maxPayload: 64 * 1024 }) : null;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket); socket.once('close', () => sockets.delete(socket));
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) });
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (path !== '/ws' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (!wss) return handRolledWsEcho(req, socket, head);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: unknown, isBinary: boolean) => ws.send(data, { binary: isBinary }));
      ws.on('error', () => ws.terminate());
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const scheme = tls === false ? 'http' : 'https';

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      if (wss) { for (const c of wss.clients) c.terminate(); wss.close(); }
      server.close(() => resolve());
      server.closeAllConnections?.();
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
    return closing;
  };

  return {
    url: `${scheme}://127.0.0.1:${port}`,
    wsUrl: `${tls === false ? 'ws' : 'wss'}://127.0.0.1:${port}/ws`,
    host: '127.0.0.1',
    port,
    tls,
    pki,
    requests,
    close,
  };
}

// ---------------------------------------------------------------- raw TCP

export type RawBehaviour = 'reset' | 'hang' | 'garbage' | 'close';

export interface RawTcpServer {
  port: number;
  url: string;
  /** Number of connections accepted so far. */
  connections: () => number;
  close(): Promise<void>;
}

/**
 * A TCP server that misbehaves: 'reset' sends RST on the first data, 'hang' accepts and never answers,
 * 'garbage' writes 'not http\r\n\r\n' and closes, 'close' ends the connection immediately.
 */
export async function startRawTcpServer(behaviour: RawBehaviour): Promise<RawTcpServer> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createNetServer((s) => {
    count++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => { /* expected */ });
    switch (behaviour) {
      case 'reset':
        s.once('data', () => {
          if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
          else s.destroy();
        });
        break;
      case 'hang':
        s.resume(); // read and discard, never answer
        break;
      case 'garbage':
        s.resume();
        s.end('not http\r\n\r\n');
        break;
      case 'close':
        s.end();
        break;
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => count,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
      return closing;
    },
  };
}
