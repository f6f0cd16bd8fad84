// The web console: the built renderer (out/renderer) plus the AirlockApi over
// HTTP + Server-Sent Events, on loopback only. A transport, nothing more: every
// decision is the service's; this file only authenticates, parses and maps errors.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { toErrorPayload } from './errors';
import { API_METHODS, AirlockError, CLIENT_HEADER, VIA_METHODS, type AirlockClient, type ApiMethod, type ErrorCode, type ErrorPayload } from '../contract';

export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export const MAX_BODY_BYTES = 1024 * 1024;
const SSE_PING_MS = 15_000;
/** Bytes an SSE client may leave unread before its stream is cut (it reconnects and reloads). */
export const SSE_MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  'bad-request': 400,
  unauthorized: 401,
  'not-found': 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export interface ConsoleServerOptions {
  api: AirlockClient;
  /** Bearer token for /api; the URL to open is `<url>/#token=<token>`. */
  token: string;
  host?: '127.0.0.1';
  /** 0 picks a free port. */
  port: number;
  /** The built renderer, normally out/renderer. */
  staticDir: string;
}

export interface ConsoleServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export { toErrorPayload };

const methodSet: ReadonlySet<string> = new Set(API_METHODS);

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time token comparison (hashing first makes the lengths equal). */
/** What the console answers to `/api/prove?challenge=C`: HMAC-SHA256 under the admin token of the port and C. */
export function consoleProof(token: string, port: number, challenge: string): string {
  return createHmac('sha256', token).update(`airlock-console-proof\n${port}\n${challenge}`).digest('hex');
}

export function tokenMatches(given: string | null | undefined, expected: string): boolean {
  if (typeof given !== 'string' || given.length === 0) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : null;
}

function baseHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body ?? null), 'utf8');
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': data.length,
    'Cache-Control': 'no-store',
  });
  res.end(data);
}

function sendError(res: ServerResponse, code: ErrorCode, message: string): void {
  const payload: ErrorPayload = { code, message };
  sendJson(res, STATUS_BY_CODE[code], payload);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  const data = Buffer.from(text + '\n', 'utf8');
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': data.length, 'Cache-Control': 'no-store' });
  res.end(data);
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        // Stop reading (not destroy: the 413 must still go out); the socket is cut once it has.
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolveBody(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function createConsoleServer(opts: ConsoleServerOptions): Promise<ConsoleServer> {
  const host = opts.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new AirlockError('bad-request', 'The web console listens on 127.0.0.1 only.');
  if (!opts.token || opts.token.length < 16) throw new AirlockError('bad-request', 'The web console token must be at least 16 characters.');
  const staticRoot = resolve(opts.staticDir);
  const sockets = new Set<Socket>();
  const streams = new Set<ServerResponse>();
  let port = 0;

  const ownOrigins = () => new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
  const ownHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);

  async function serveStatic(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, 'method not allowed');
      return;
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      sendText(res, 400, 'bad path');
      return;
    }
    const segments = decoded.split(/[\\/]+/);
    if (decoded.includes('\0') || segments.some((s) => s === '..' || s === '.') || !decoded.startsWith('/')) {
      sendText(res, 400, 'bad path');
      return;
    }
    const rel = decoded === '/' ? 'index.html' : decoded.slice(1);
    const file = resolve(staticRoot, rel);
    if (file !== staticRoot && !file.startsWith(staticRoot + sep)) {
      sendText(res, 400, 'bad path');
      return;
    }
    const indexStat = await stat(resolve(staticRoot, 'index.html')).catch(() => null);
    if (!indexStat?.isFile()) {
      sendText(res, 503, 'web console not built: run npm run build');
      return;
    }
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) {
      sendText(res, 404, 'not found');
      return;
    }
    const data = await readFile(file);
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': data.length,
      'Cache-Control': rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : data);
  }

  async function serveApi(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (!methodSet.has(method)) {
      sendError(res, 'not-found', `Unknown API method "${method}".`);
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendJson(res, 405, { code: 'bad-request', message: 'API methods are called with POST.' });
      return;
    }
    if (!tokenMatches(bearer(req), opts.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      sendError(res, 'unauthorized', 'Missing or wrong console token; open the URL that `airlock status` prints (it ends in #token=…).');
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.setHeader('Connection', 'close');
        res.once('finish', () => req.socket.destroySoon());
        sendJson(res, 413, { code: 'bad-request', message: 'Request body larger than 1 MiB.' });
      } else sendError(res, 'bad-request', 'Could not read the request body.');
      return;
    }
    let arg: unknown = undefined;
    if (body.length > 0) {
      try {
        arg = JSON.parse(body.toString('utf8'));
      } catch {
        sendError(res, 'bad-request', 'Request body is not valid JSON.');
        return;
      }
    }
    // A decision (or an export) records the channel it came through: the CLI names itself, anything else is the web console.
    // No body (or null) counts as an empty query: it is stamped too.
    if (VIA_METHODS.has(method) && (arg === undefined || arg === null || (typeof arg === 'object' && !Array.isArray(arg)))) {
      arg = { ...(arg ?? {}), via: req.headers[CLIENT_HEADER] === 'cli' ? 'cli' : 'web console' };
    }
    try {
      const fn = opts.api[method as ApiMethod] as (a: unknown) => Promise<unknown>;
      const result = await fn.call(opts.api, arg ?? {});
      sendJson(res, 200, result);
    } catch (err) {
      const payload = toErrorPayload(err);
      if (payload.code === 'internal') console.error('[airlock console]', method, err);
      sendError(res, payload.code, payload.message);
    }
  }

  function serveEvents(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      sendText(res, 405, 'method not allowed');
      return;
    }
    if (!tokenMatches(query.get('token') ?? bearer(req), opts.token)) {
      sendError(res, 'unauthorized', 'Missing or wrong console token.');
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 3000\n: connected\n\n');
    streams.add(res);
    const unsubscribe = opts.api.subscribe((event) => {
      // A client that stops reading would have every event queued here for ever (review events carry
      // whole diffs): past SSE_MAX_QUEUED_BYTES the stream is cut, and the browser reconnects after
      // `retry` and reloads what it shows.
      if (res.writableLength > SSE_MAX_QUEUED_BYTES) {
        res.destroy();
        return;
      }
      res.write(`data: ${JSON.stringify(event)}\n\n`);
    });
    const ping = setInterval(() => res.write(': ping\n\n'), SSE_PING_MS);
    ping.unref();
    const done = () => {
      clearInterval(ping);
      unsubscribe();
      streams.delete(res);
    };
    req.socket.setTimeout(0);
    res.on('close', done);
  }

  const server = createServer((req, res) => {
    baseHeaders(res);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));

    // DNS-rebinding guard: only our own loopback names are served.
    if (!ownHosts().has(String(req.headers.host ?? '').toLowerCase())) {
      sendText(res, 421, 'wrong host');
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !ownOrigins().has(String(origin).toLowerCase())) {
      if (rawPath.startsWith('/api/')) {
        sendJson(res, 403, { code: 'unauthorized', message: 'Cross-origin requests to the console API are refused.' });
      } else sendText(res, 403, 'cross-origin request refused');
      return;
    }

    if (rawPath === '/api/prove') {
      // Unauthenticated: shows a client (the CLI, which holds the admin token) that this is the console
      // the token belongs to before it sends the token (a stale runtime.json may name a port that
      // another process holds now). Bound to this port, so a proof cannot be relayed from another one.
      const challenge = query.get('challenge') ?? '';
      if (req.method !== 'GET' || !/^[0-9a-f]{32,128}$/.test(challenge)) {
        sendText(res, 400, 'GET /api/prove?challenge=HEX');
        return;
      }
      sendJson(res, 200, { proof: consoleProof(opts.token, port, challenge) });
      return;
    }
    const task = rawPath === '/api/events'
      ? Promise.resolve(serveEvents(req, res, query))
      : rawPath.startsWith('/api/')
        ? serveApi(req, res, rawPath.slice('/api/'.length))
        : serveStatic(req, res, rawPath);
    task.catch((err: unknown) => {
      console.error('[airlock console]', err);
      if (!res.headersSent) sendError(res, 'internal', 'Internal error in the web console.');
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const url = `http://127.0.0.1:${port}`;

  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolveClose) => {
        for (const s of streams) s.end();
        server.close(() => resolveClose());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
