// Reference proxies for the benchmark: what any TLS-intercepting proxy written in Node reaches on the
// machine of the day. Not Airlock, not judged; they put Airlock's ratios in context on a VM whose speed
// drifts from one day to the next.
//
//   node --import tsx bench/reference-proxy.ts <tls-pipe|http-undici> <cert.pem> <key.pem> <upstream-ca.pem>
//
// Both answer CONNECT with 200 and terminate the client's TLS with the given certificate (the bench
// upstream's own, which names every bench IP), then:
//   tls-pipe     opens TLS to the target and pipes bytes both ways: no HTTP parsing at all, the floor
//                of four TLS operations and four socket calls per request;
//   http-undici  hands the TLS socket to a node:http server and relays each request through undici's
//                dispatcher: the same two HTTP stacks Airlock's hot path uses, with nothing of Airlock's.
// Upstream TLS is verified against <upstream-ca.pem> (the bench CA). Listens on 127.0.0.1 only and
// prints one JSON line {"port": N}. Bad input closes that connection; nothing here loops unbounded.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, type Dispatcher } from 'undici';

const [mode, certPath, keyPath, caPath] = process.argv.slice(2);
if ((mode !== 'tls-pipe' && mode !== 'http-undici') || !certPath || !keyPath || !caPath) {
  console.error('usage: reference-proxy.ts <tls-pipe|http-undici> <cert.pem> <key.pem> <upstream-ca.pem>');
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
    } else {
      (client as tls.TLSSocket & { target?: string }).target = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
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
