// Reference proxies for the benchmark: what any TLS-intercepting proxy written in Node reaches on the
// machine of the day. Not Airlock, not judged; they put Airlock's ratios in context on a VM whose speed
// drifts from one day to the next.
//
//   node --import tsx bench/reference-proxy.ts <tls-pipe|http-undici|raw-undici|raw-raw> <cert.pem> <key.pem> <upstream-ca.pem>
//
// All answer CONNECT with 200 and terminate the client's TLS with the given certificate (the bench
// upstream's own, which names every bench IP), then:
//   tls-pipe     opens TLS to the target and pipes bytes both ways: no HTTP parsing at all, the floor
//                of four TLS operations and four socket calls per request;
//   http-undici  hands the TLS socket to a node:http server and relays each request through undici's
//                dispatcher: the same two HTTP stacks Airlock's hot path uses, with nothing of Airlock's;
//   raw-undici   reads each request head off the TLS socket itself (a minimal reader: body-less requests
//                only, one at a time) and writes each response head itself, relaying through undici's
//                dispatcher: node:http's server side replaced, what a hand-written server side could save;
//   raw-raw      the same reader, and the upstream side by hand too: one kept-alive TLS connection per
//                client connection, the request head written to it, the response head parsed (status and
//                content-length only; anything else closes the connection) and relayed with its body as they came:
//                no HTTP library at all, what a proxy that parses HTTP/1.1 itself could reach.
// Upstream TLS is verified against <upstream-ca.pem> (the bench CA). Listens on 127.0.0.1 only and
// prints one JSON line {"port": N}. Bad input closes that connection; nothing here loops unbounded.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, type Dispatcher } from 'undici';

const [mode, certPath, keyPath, caPath] = process.argv.slice(2);
if ((mode !== 'tls-pipe' && mode !== 'http-undici' && mode !== 'raw-undici' && mode !== 'raw-raw') || !certPath || !keyPath || !caPath) {
  console.error('usage: reference-proxy.ts <tls-pipe|http-undici|raw-undici|raw-raw> <cert.pem> <key.pem> <upstream-ca.pem>');
  process.exit(2);
}
const serverContext = tls.createSecureContext({ cert: readFileSync(certPath), key: readFileSync(keyPath) });
const ca = readFileSync(caPath);
const upstreamContext = tls.createSecureContext({ ca });
const MAX_HEAD = 16 * 1024;

/** `host:port` from a CONNECT line, or null. */
function connectTarget(head: string): { host: string; port: number } | null {
  const m = /^CONNECT ([^\s]+):(\d{1,5}) HTTP\/1\.[01]\r\n/.exec(head);
  if (!m) return null;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!.replace(/^\[|\]$/g, ''), port } : null;
}

const undici = new Agent({ connect: { ca }, keepAliveTimeout: 60_000 });
const httpServer = http.createServer((req, res) => {
  const target = (req.socket as tls.TLSSocket & { target?: string }).target!;
  const headers: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  req.resume(); // the bench sends GETs without a body
  undici.dispatch({ origin: `https://${target}`, path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers }, {
    onConnect() {},
    onHeaders(status: number, raw: Buffer[], resume: () => void) {
      const out: string[] = [];
      for (let i = 0; i < raw.length; i += 2) out.push(raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1'));
      res.writeHead(status, out);
      res.on('drain', resume);
      return true;
    },
    onData(chunk: Buffer) {
      return res.write(chunk);
    },
    onComplete() {
      res.end();
    },
    onError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-length': '0' }).end();
    },
  } as unknown as Dispatcher.DispatchHandler);
});

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization']);
const BAD = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

/**
 * raw-undici: request heads read off the socket, responses written to it, one request at a time. A
 * reference, not a server: it takes only body-less HTTP/1.1 requests (anything else is a 400 and a close).
 */
function serveRaw(client: tls.TLSSocket, origin: string, target: { host: string; port: number }): void {
  let buf: Buffer | null = null;
  let busy = false;
  let onDrain: (() => void) | null = null;
  const next = (): void => {
    if (!buf || busy) return;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD) client.destroy();
      return;
    }
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    buf = end + 4 < buf.length ? buf.subarray(end + 4) : null;
    const m = /^([A-Z]{1,16}) (\/[!-~]*) HTTP\/1\.1$/.exec(lines[0]!);
    if (!m) return void client.end(BAD);
    const headers: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]!;
      const c = l.indexOf(':');
      if (c <= 0) return void client.end(BAD);
      const k = l.slice(0, c);
      const v = l.slice(c + 1).trim();
      const lk = k.toLowerCase();
      if (lk === 'transfer-encoding' || (lk === 'content-length' && v !== '0')) return void client.end(BAD);
      if (!HOP_BY_HOP.has(lk)) headers.push(k, v);
    }
    busy = true;
    if (mode === 'raw-raw') return relayRaw(m[1]!, m[2]!, headers);
    let chunked = false;
    undici.dispatch({ origin, path: m[2]!, method: m[1] as Dispatcher.HttpMethod, headers }, {
      onConnect() {},
      onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string) {
        let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
        let length = false;
        for (let i = 0; i < raw.length; i += 2) {
          const k = raw[i]!.toString('latin1');
          const lk = k.toLowerCase();
          if (HOP_BY_HOP.has(lk)) continue;
          if (lk === 'content-length') length = true;
          head += `${k}: ${raw[i + 1]!.toString('latin1')}\r\n`;
        }
        chunked = !length && status !== 204 && status !== 304 && m[1] !== 'HEAD';
        if (chunked) head += 'transfer-encoding: chunked\r\n';
        client.cork();
        client.write(`${head}\r\n`, 'latin1');
        onDrain = resume;
        client.on('drain', resume);
        return true;
      },
      onData(chunk: Buffer) {
        if (!chunked) return client.write(chunk);
        client.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        client.write(chunk);
        return client.write('\r\n', 'latin1');
      },
      onComplete() {
        if (chunked) client.write('0\r\n\r\n', 'latin1');
        client.uncork();
        if (onDrain) client.off('drain', onDrain);
        onDrain = null;
        busy = false;
        next();
      },
      onError() {
        client.destroy();
      },
    } as unknown as Dispatcher.DispatchHandler);
  };
  // raw-raw: one upstream connection for this client connection, opened on its first request.
  let up: tls.TLSSocket | null = null;
  let onUp: ((c: Buffer) => void) | null = null;
  const relayRaw = (method: string, path: string, headers: string[]): void => {
    if (!up) {
      up = tls.connect({ host: target.host, port: target.port, secureContext: upstreamContext, servername: net.isIP(target.host) ? undefined : target.host });
      up.setNoDelay(true);
      up.on('error', () => client.destroy());
      up.on('close', () => client.destroy());
      client.on('close', () => up?.destroy());
      up.on('data', (c: Buffer) => onUp?.(c));
    }
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    up.write(`${head}\r\n`, 'latin1');
    let acc: Buffer | null = null;
    let left = -1; // body bytes still to come, once the head is parsed
    onUp = (c: Buffer) => {
      if (left < 0) {
        acc = acc ? Buffer.concat([acc, c]) : c;
        const end = acc.indexOf('\r\n\r\n');
        if (end < 0) return void (acc.length > MAX_HEAD && client.destroy());
        const lines = acc.toString('latin1', 0, end).split('\r\n');
        const sm = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]! + ' ');
        let out = `${lines[0]}\r\n`;
        let length = -1;
        for (let i = 1; i < lines.length; i++) {
          const l = lines[i]!;
          const k = l.slice(0, l.indexOf(':')).toLowerCase();
          if (k === 'content-length') length = Number(l.slice(l.indexOf(':') + 1).trim());
          else if (k === 'transfer-encoding') length = -2;
          if (!HOP_BY_HOP.has(k)) out += `${l}\r\n`;
        }
        if (!sm || !(length >= 0)) return void client.destroy(); // a reference: content-length framing only
        const rest = acc.subarray(end + 4);
        acc = null;
        left = length - rest.length;
        client.cork();
        client.write(`${out}\r\n`, 'latin1');
        if (rest.length > 0) client.write(rest);
      } else {
        left -= c.length;
        client.write(c);
      }
      if (left === 0) {
        client.uncork();
        onUp = null;
        busy = false;
        next();
      } else if (left < 0) client.destroy(); // more than announced: a reference does not pipeline upstream
    };
  };
  client.on('data', (c: Buffer) => {
    buf = buf ? Buffer.concat([buf, c]) : c;
    next();
  });
}

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD) sock.destroy();
      return;
    }
    sock.off('data', onData);
    sock.pause();
    const target = connectTarget(head.subarray(0, end + 2).toString('latin1'));
    if (!target || end + 4 !== head.length) {
      sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const client = new tls.TLSSocket(sock, { isServer: true, secureContext: serverContext });
    client.on('error', () => client.destroy());
    const authority = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
    if (mode === 'tls-pipe') {
      const up = tls.connect({ host: target.host, port: target.port, secureContext: upstreamContext, servername: net.isIP(target.host) ? undefined : target.host });
      up.setNoDelay(true);
      const close = (): void => {
        client.destroy();
        up.destroy();
      };
      up.on('error', close);
      client.on('close', close);
      up.on('close', close);
      client.pipe(up);
      up.pipe(client);
    } else if (mode === 'raw-undici' || mode === 'raw-raw') {
      serveRaw(client, `https://${authority}`, target);
    } else {
      (client as tls.TLSSocket & { target?: string }).target = authority;
      httpServer.emit('connection', client);
    }
    sock.resume();
  };
  sock.on('data', onData);
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as net.AddressInfo).port }));
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
