// Benchmark upstream. Runs as its own child process (forked by bench/run.ts) so it
// never shares an event loop with the load generator.
//
//   node --import tsx bench/upstream.ts <cert.pem> <key.pem> <ipCount>
//
// Listens with HTTPS on 127.0.0.1 … 127.0.0.<ipCount>, the same port on every IP,
// one listener per IP (each bound explicitly, never 0.0.0.0). Answers any GET with
// 1024 bytes of 'x'. Talks to the parent over IPC:
//   child → parent  { type: 'ready', port }            once all listeners are up
//   parent → child  { cmd: 'stats', reset?: boolean }  → { type: 'stats', connections, requests, byIp }
//   parent → child  { cmd: 'close' }                   → closes listeners and exits
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { upstreamIps } from './pki';

const [certPath, keyPath, countArg] = process.argv.slice(2);
if (!certPath || !keyPath || !countArg || !process.send) {
  console.error('usage: forked with IPC: upstream.ts <cert.pem> <key.pem> <ipCount>');
  process.exit(2);
}
const send = (msg: unknown): void => {
  process.send?.(msg);
};

const BODY = Buffer.alloc(1024, 'x');
const cert = readFileSync(certPath);
const key = readFileSync(keyPath);
const ips = upstreamIps(Number(countArg));

let connections = 0;
let requests = 0;
let byIp: Record<string, number> = {};

function handler(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  if (req.method !== 'GET') {
    res.writeHead(405, { 'content-length': '0' });
    res.end();
    return;
  }
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BODY.length) });
  res.end(BODY);
}

function makeServer(ip: string): https.Server {
  const server = https.createServer({ cert, key, secureContext: createSecureContext({ cert, key }) }, handler);
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  server.on('secureConnection', () => {
    connections++;
    byIp[ip] = (byIp[ip] ?? 0) + 1;
  });
  server.on('tlsClientError', () => {
    /* a client that gave up mid-handshake; nothing to do */
  });
  return server;
}

function listen(server: https.Server, ip: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host: ip, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function closeAll(servers: https.Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (!s.listening) return resolve();
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
}

async function start(): Promise<{ port: number; servers: https.Server[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const servers: https.Server[] = [];
    try {
      const first = makeServer(ips[0]!);
      servers.push(first);
      const port = await listen(first, ips[0]!, 0);
      for (const ip of ips.slice(1)) {
        const s = makeServer(ip);
        servers.push(s);
        await listen(s, ip, port);
      }
      return { port, servers };
    } catch (err) {
      await closeAll(servers);
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('could not find one port free on every upstream IP after 20 attempts');
}

const { port, servers } = await start();
process.on('message', (msg: { cmd?: string; reset?: boolean }) => {
  if (msg?.cmd === 'stats') {
    send({ type: 'stats', connections, requests, byIp });
    if (msg.reset) {
      connections = 0;
      requests = 0;
      byIp = {};
    }
  } else if (msg?.cmd === 'close') {
    void closeAll(servers).then(() => process.exit(0));
  }
});
process.on('disconnect', () => {
  void closeAll(servers).then(() => process.exit(0));
});
send({ type: 'ready', port, ips: ips.length });
