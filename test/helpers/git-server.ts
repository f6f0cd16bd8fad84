// A real git smart-HTTP server for tests: Node HTTPS (test PKI) on 127.0.0.1:0 running `git http-backend` as CGI.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { createTestPki, type TestPki } from './test-ca';
import { gitEnvIsolated, runGitOk } from './git-client';
import { makeTempDir, removeDir } from './tmp';

export interface GitServerRequest {
  method: string;
  /** URL path without the query, e.g. /repo.git/git-receive-pack */
  path: string;
  /** Query string without '?', e.g. service=git-upload-pack */
  query: string;
  status: number;
  /** Request headers as received (content-length / transfer-encoding / content-encoding / git-protocol...). */
  headers: IncomingHttpHeaders;
}

export interface GitRepo {
  /** https://127.0.0.1:PORT/<name>.git */
  url: string;
  /** Same URL with the server's Basic credentials embedded (equals url when the server has no auth). */
  authUrl: string;
  /** The bare repository on disk: <root>/<name>.git */
  dir: string;
}

export interface GitServer {
  /** https://127.0.0.1:PORT (http:// with tls:false; see urlHost); no trailing slash. */
  url: string;
  port: number;
  /** GIT_PROJECT_ROOT: bare repositories live at <root>/<name>.git */
  root: string;
  pki: TestPki;
  /** An isolated git environment (HOME inside the server's temp dir) usable for local git commands in tests. */
  env: NodeJS.ProcessEnv;
  /** Every HTTP request handled, with the status sent. */
  requests: GitServerRequest[];
  /** Creates bare repo <root>/<name>.git with http.receivepack=true; seed adds one commit (README.md = 'hello\n') on the default branch (main). */
  createRepo(name: string, opts?: { seed?: boolean; defaultBranch?: string }): Promise<GitRepo>;
  /** refname -> object id of every ref in the bare repo (e.g. { 'refs/heads/main': '3f...' }). */
  refs(name: string): Promise<Record<string, string>>;
  /** Stops the server, destroys open sockets, kills running http-backend processes, removes the temp dir. */
  close(): Promise<void>;
}

export interface GitServerOptions {
  pki?: TestPki;
  /** When set, every request without these Basic credentials gets 401 + WWW-Authenticate: Basic realm="git". */
  auth?: { username: string; password: string };
  /** Default true (HTTPS with the test PKI's good leaf); false serves plain HTTP. */
  tls?: boolean;
  /** Port to listen on (127.0.0.1); default 0, a free one. 443 needs root or CAP_NET_BIND_SERVICE. */
  port?: number;
  /** Host name in the URLs (default 127.0.0.1; `localhost` is in the test leaf). The port is left out when it is the scheme's default. */
  urlHost?: string;
}

function checkRepoName(name: string): void {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(name) || name.split('/').some((p) => p === '..' || p === '.')) {
    throw new Error(`invalid test repo name: ${JSON.stringify(name)}`);
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a); const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Splits CGI output into header block and rest; returns null until the blank line has arrived. */
function splitCgi(buf: Buffer): { head: string; rest: Buffer } | null {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  let end = -1; let sep = 0;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) { end = crlf; sep = 4; } else if (lf >= 0) { end = lf; sep = 2; }
  if (end < 0) return null;
  return { head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + sep) };
}

export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const pki = opts.pki ?? (await createTestPki());
  const base = await makeTempDir('airlock-test-git-');
  const root = join(base, 'repos');
  const home = join(base, 'home');
  await mkdir(root, { recursive: true });
  const env = gitEnvIsolated(home);
  const requests: GitServerRequest[] = [];
  const sockets = new Set<Socket>();
  const children = new Set<ChildProcess>();
  const auth = opts.auth;
  const expectedAuth = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : '';

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const record = (status: number): void => { requests.push({ method, path: u.pathname, query: u.search.replace(/^\?/, ''), status, headers: req.headers }); };
    const fail = (status: number, msg: string, headers: Record<string, string> = {}): void => {
      record(status);
      req.resume();
      if (res.headersSent) { res.destroy(); return; }
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(msg), ...headers });
      res.end(msg);
    };

    if (auth && !safeEqual(req.headers.authorization ?? '', expectedAuth)) {
      return fail(401, 'authentication required\n', { 'www-authenticate': 'Basic realm="git"' });
    }
    let pathInfo: string;
    try { pathInfo = decodeURIComponent(u.pathname); } catch { return fail(400, 'bad path\n'); }

    const cgiEnv: NodeJS.ProcessEnv = {
      ...env,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      SERVER_NAME: '127.0.0.1',
      SERVER_PORT: String(port),
      REQUEST_METHOD: method,
      PATH_INFO: pathInfo,
      QUERY_STRING: u.search.replace(/^\?/, ''),
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    };
    if (req.headers['content-type']) cgiEnv.CONTENT_TYPE = req.headers['content-type'];
    if (req.headers['content-length'] !== undefined) cgiEnv.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding']) cgiEnv.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    const gp = req.headers['git-protocol'];
    if (gp) cgiEnv.HTTP_GIT_PROTOCOL = Array.isArray(gp) ? gp.join(':') : gp;
    if (auth) { cgiEnv.REMOTE_USER = auth.username; cgiEnv.AUTH_TYPE = 'Basic'; }

    const child = spawn('git', ['http-backend'], { env: cgiEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    const stderr: Buffer[] = [];
    let head: Buffer | null = Buffer.alloc(0); // null once headers were sent
    child.stderr.on('data', (c: Buffer) => { if (stderr.length < 64) stderr.push(c); });
    child.on('error', (e) => fail(500, `cannot run git http-backend: ${e.message}\n`));
    child.stdin.on('error', () => { /* backend may stop reading early */ });
    req.pipe(child.stdin);
    req.on('aborted', () => child.kill('SIGKILL'));
    res.on('close', () => { if (child.exitCode === null) child.kill('SIGKILL'); });

    const onHeaders = (block: string, rest: Buffer): void => {
      let status = 200;
      for (const line of block.split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') { status = parseInt(value, 10) || 500; continue; }
        const prev = res.getHeader(name);
        if (prev === undefined) res.setHeader(name, value);
        else res.setHeader(name, [...(Array.isArray(prev) ? prev : [String(prev)]), value]);
      }
      record(status);
      res.statusCode = status;
      if (rest.length) res.write(rest);
    };
    child.stdout.on('data', (c: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, c]);
        const split = splitCgi(head);
        if (!split) { if (head.length > 64 * 1024) { child.kill('SIGKILL'); fail(502, 'CGI header too large\n'); } return; }
        head = null;
        onHeaders(split.head, split.rest);
        return;
      }
      if (!res.write(c)) { child.stdout.pause(); res.once('drain', () => child.stdout.resume()); }
    });
    child.on('close', (code) => {
      children.delete(child);
      if (head !== null) {
        return fail(500, `git http-backend exited ${code} without a response: ${Buffer.concat(stderr).toString()}\n`);
      }
      res.end();
    });
  };

  const server: Server = opts.tls === false
    ? createHttpServer(handler)
    : createHttpsServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, handler);
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.on('tlsClientError', (_e: Error, s: Socket) => s.destroy());
  server.on('clientError', (_e: Error, s: Socket) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const scheme = opts.tls === false ? 'http' : 'https';
  const hostPort = `${opts.urlHost ?? '127.0.0.1'}${port === (opts.tls === false ? 80 : 443) ? '' : `:${port}`}`;
  const url = `${scheme}://${hostPort}`;
  const authUrlBase = auth ? `${scheme}://${encodeURIComponent(auth.username)}:${encodeURIComponent(auth.password)}@${hostPort}` : url;

  const repoDir = (name: string): string => { checkRepoName(name); return join(root, `${name}.git`); };

  const createRepo = async (name: string, o: { seed?: boolean; defaultBranch?: string } = {}): Promise<GitRepo> => {
    const dir = repoDir(name);
    const branch = o.defaultBranch ?? 'main';
    await mkdir(dir, { recursive: true });
    await runGitOk(['init', '--quiet', '--bare', `--initial-branch=${branch}`, dir], { env });
    await runGitOk(['config', 'http.receivepack', 'true'], { cwd: dir, env });
    if (o.seed) {
      const blob = (await runGitOk(['hash-object', '-w', '--stdin'], { cwd: dir, env, input: 'hello\n' })).stdout.trim();
      const tree = (await runGitOk(['mktree'], { cwd: dir, env, input: `100644 blob ${blob}\tREADME.md\n` })).stdout.trim();
      const commit = (await runGitOk(['commit-tree', tree, '-m', 'Initial commit'], { cwd: dir, env })).stdout.trim();
      await runGitOk(['update-ref', `refs/heads/${branch}`, commit], { cwd: dir, env });
    }
    return { url: `${url}/${name}.git`, authUrl: `${authUrlBase}/${name}.git`, dir };
  };

  const refs = async (name: string): Promise<Record<string, string>> => {
    const r = await runGitOk(['for-each-ref', '--format=%(objectname) %(refname)'], { cwd: repoDir(name), env });
    const out: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      const m = /^([0-9a-f]{40,64}) (.+)$/.exec(line.trim());
      if (m) out[m[2]!] = m[1]!;
    }
    return out;
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const c of children) c.kill('SIGKILL');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
        for (const s of sockets) s.destroy();
        sockets.clear();
      });
      await removeDir(base);
    })();
    return closing;
  };

  return { url, port, root, pki, env, requests, createRepo, refs, close };
}
