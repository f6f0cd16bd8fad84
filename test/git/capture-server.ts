// A tiny git smart-HTTP server for tests: `git http-backend` as CGI behind node:http on
// 127.0.0.1:0. It saves every POST body (gzip undone) so tests get real receive-pack
// request bodies, and can answer POSTs itself (to test our report-status against real git).
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { once } from 'node:events';
import { git } from '../../main/git/git-cli';
import { decodePkts, encodePkt, FLUSH } from '../../main/git/pkt-line';

export interface CapturedPost {
  path: string;
  headers: IncomingHttpHeaders;
  /** Body after undoing Content-Encoding (what parseReceivePackRequest sees). */
  body: Buffer;
  chunked: boolean;
  gzip: boolean;
}

export interface CaptureServer {
  /** http://127.0.0.1:<port> */
  url: string;
  projectRoot: string;
  posts: CapturedPost[];
  /** When set, POSTs to git-receive-pack are answered by this instead of http-backend (return null to pass through). */
  respond: ((post: CapturedPost) => { contentType: string; body: Buffer } | null) | null;
  /** Capabilities removed from the receive-pack advertisement (e.g. 'side-band-64k'). */
  stripCaps: string[];
  requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** Serves the bare repositories under `projectRoot` (e.g. `<root>/r.git`). */
export async function startCaptureServer(projectRoot: string, env: NodeJS.ProcessEnv): Promise<CaptureServer> {
  const state: CaptureServer = {
    url: '', projectRoot, posts: [], respond: null, stripCaps: [], requests: [],
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const raw = Buffer.concat(chunks);
        const url = req.url ?? '/';
        state.requests.push({ method: req.method ?? '', url, headers: req.headers });
        const q = url.indexOf('?');
        const pathInfo = decodeURIComponent(q >= 0 ? url.slice(0, q) : url);
        const query = q >= 0 ? url.slice(q + 1) : '';
        const enc = String(req.headers['content-encoding'] ?? '');
        if (req.method === 'POST') {
          const post: CapturedPost = {
            path: pathInfo, headers: req.headers, body: /gzip/i.test(enc) ? gunzipSync(raw) : raw,
            chunked: /chunked/i.test(String(req.headers['transfer-encoding'] ?? '')), gzip: /gzip/i.test(enc),
          };
          state.posts.push(post);
          const answer = pathInfo.endsWith('/git-receive-pack') && state.respond ? state.respond(post) : null;
          if (answer) {
            res.writeHead(200, { 'Content-Type': answer.contentType, 'Cache-Control': 'no-cache' });
            res.end(answer.body);
            return;
          }
        }
        const cgiEnv: NodeJS.ProcessEnv = {
          ...env,
          GIT_PROJECT_ROOT: projectRoot,
          GIT_HTTP_EXPORT_ALL: '1',
          REQUEST_METHOD: req.method ?? 'GET',
          PATH_INFO: pathInfo,
          QUERY_STRING: query,
          CONTENT_TYPE: String(req.headers['content-type'] ?? ''),
          CONTENT_LENGTH: String(raw.length),
          HTTP_CONTENT_ENCODING: enc,
          REMOTE_ADDR: '127.0.0.1',
          GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        };
        const r = await git(['http-backend'], { env: cgiEnv, input: raw, name: 'git http-backend', okCodes: [0, 1, 128] });
        const out = r.stdout;
        let sep = out.indexOf('\r\n\r\n');
        let sepLen = 4;
        if (sep < 0) { sep = out.indexOf('\n\n'); sepLen = 2; }
        if (sep < 0) { res.writeHead(500); res.end(r.stderr); return; }
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of out.toString('latin1', 0, sep).split(/\r?\n/)) {
          const i = line.indexOf(':');
          if (i < 0) continue;
          const k = line.slice(0, i).trim();
          const v = line.slice(i + 1).trim();
          if (k.toLowerCase() === 'status') status = parseInt(v, 10);
          else headers[k] = v;
        }
        let body = out.subarray(sep + sepLen);
        if (req.method === 'GET' && query.includes('service=git-receive-pack') && state.stripCaps.length > 0) {
          body = stripAdvertCaps(body, state.stripCaps);
        }
        res.writeHead(status, headers);
        res.end(body);
      })().catch((e: Error) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(e.message));
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  state.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  state.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return state;
}

/** Rewrites a smart-HTTP receive-pack advertisement without the given capabilities. */
export function stripAdvertCaps(body: Buffer, caps: string[]): Buffer {
  const svc = decodePkts(body, 0); // "# service=..." + flush
  const refs = decodePkts(body, svc.end);
  const out: Buffer[] = [body.subarray(0, svc.end)];
  refs.pkts.forEach((p, i) => {
    if (p.type === 'flush') { out.push(FLUSH); return; }
    let data = p.data!;
    if (i === 0) {
      const nul = data.indexOf(0);
      const hasLf = data[data.length - 1] === 0x0a;
      const capList = data.toString('utf8', nul + 1, hasLf ? data.length - 1 : data.length).split(' ')
        .filter((c) => c && !caps.includes(c));
      data = Buffer.concat([data.subarray(0, nul + 1), Buffer.from(capList.join(' ') + (hasLf ? '\n' : ''))]);
    }
    out.push(encodePkt(data));
  });
  out.push(body.subarray(refs.end));
  return Buffer.concat(out);
}
