// Airlock behind an upstream (corporate) proxy: a real HTTP proxy (the `proxy` package, CONNECT and
// absolute-form requests, Basic auth) on loopback between the gateway and the real upstreams.
// Real curl and git clients as agents; what the upstream proxy saw is checked request by request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { createProxy } from 'proxy';
import { createTestPki, freePort, startGitServer, startUpstream, type GitServer, type TestPki, type Upstream } from '../helpers';
import { startTestAirlock, type TestAirlock } from '../helpers/airlock';
import { gitEnvIsolated, runGit, runGitOk } from '../helpers/git-client';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { curlVia, openTunnel, tlsTunnel, wsEchoOver, type CurlTarget } from './client';
import { UpstreamProxy } from '../../main/gateway/upstream-proxy';
import { createLogger } from '../../main/log';


const CORP = 'Basic ' + Buffer.from('corp:pa$$ word').toString('base64');

interface Seen { kind: 'connect' | 'request'; target: string; auth: string | undefined }
interface Corp { port: number; seen: Seen[]; close(): Promise<void> }

/** A real forward proxy that wants `corp` / `pa$$ word`; records every CONNECT and request it gets. */
async function startCorpProxy(): Promise<Corp> {
  const seen: Seen[] = [];
  const server = http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.prependListener('connect', (req: http.IncomingMessage) => seen.push({ kind: 'connect', target: String(req.url), auth: req.headers['proxy-authorization'] }));
  server.prependListener('request', (req: http.IncomingMessage) => seen.push({ kind: 'request', target: String(req.url), auth: req.headers['proxy-authorization'] }));
  const p = createProxy(server);
  p.authenticate = (req) => req.headers['proxy-authorization'] === CORP;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    close: () => new Promise<void>((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }),
  };
}

let pki: TestPki;
let up: Upstream;
let plain: Upstream;
let bad: Upstream;
let corp: Corp;
let gw: TestAirlock;
let g: CurlTarget;
const more: Array<() => Promise<void>> = [];

before(async () => {
  pki = await createTestPki();
  [up, plain, bad, corp] = await Promise.all([
    startUpstream({ pki }), startUpstream({ tls: false, pki, websocket: 'ws' }), startUpstream({ tls: 'bad', pki }), startCorpProxy(),
  ]);
  gw = await startTestAirlock({
    upstreamCa: [pki.caPath],
    // Loopback is bypassed by default; these tests need every upstream (all on loopback) behind the proxy.
    options: { consolePort: null, upstreamProxy: `http://corp:${encodeURIComponent('pa$$ word')}@127.0.0.1:${corp.port}`, upstreamNoProxy: [] },
  });
  g = { proxyUrl: gw.proxyUrl, caPath: gw.caPath, user: 'bot', token: await gw.addAgent('bot') };
});

after(async () => {
  for (const c of more.reverse()) await c().catch(() => undefined);
  await gw?.close();
  await Promise.all([up?.close(), plain?.close(), bad?.close(), corp?.close()]);
});

/** What the upstream proxy saw since `n` for targets on `port` (git's background cache refreshes may run meanwhile). */
const since = (n: number, port?: number) => corp.seen.slice(n).filter((s) => port === undefined || s.target.includes(`:${port}`));

/**
 * A clone of a fresh seeded repo on `gs` with one commit adding `file`, pushed through the gateway with
 * `proxyEnv` (the agent has no credential); resolves once the push is held for review. `n` is how much
 * the upstream proxy had seen before the push.
 */
async function heldPush(gs: GitServer, name: string, file: string, proxyEnv: NodeJS.ProcessEnv) {
  const home = await makeTempDir(`airlock-corp-${name}-`);
  more.push(() => removeDir(home));
  const repo = await gs.createRepo(name, { seed: true });
  const env = gitEnvIsolated(home, proxyEnv);
  const work = join(home, 'w');
  await runGitOk(['clone', '-q', repo.dir, work], { env });
  await runGitOk(['remote', 'set-url', 'origin', repo.url], { cwd: work, env });
  writeFileSync(join(work, file), `${name} through the corporate proxy\n`);
  await runGitOk(['add', '-A'], { cwd: work, env });
  await runGitOk(['commit', '-q', '-m', `${name} change`], { cwd: work, env });
  const oid = (await runGitOk(['rev-parse', 'HEAD'], { cwd: work, env })).stdout.trim();
  const n = corp.seen.length;
  const push = runGit(['push', 'origin', 'main'], { cwd: work, env, timeoutMs: 60_000 });
  let reviewId: string | null = null;
  for (let i = 0; i < 400 && !reviewId; i++) {
    const r = gw.service.store.reviews.list({}).find((x) => x.repo.includes(`${name}.git`) && x.state === 'pending');
    if (r) reviewId = r.id;
    else await new Promise((res) => setTimeout(res, 50));
  }
  assert.ok(reviewId, 'the push was held for review');
  return { push, reviewId, oid, n };
}

describe('through an upstream proxy', () => {
  test('HTTPS: a CONNECT tunnel with the upstream proxy\'s credentials (never the agent\'s); TLS with the origin verified end to end', async () => {
    const n = corp.seen.length;
    const r = await curlVia(g, [`${up.url}/hello`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello');
    assert.deepEqual(since(n, up.port), [{ kind: 'connect', target: `127.0.0.1:${up.port}`, auth: CORP }]);
    const ex = gw.service.store.exchanges.list({ limit: 1 })[0]!;
    assert.equal(ex.status, 200);
    assert.ok(!JSON.stringify(gw.service.store.exchanges.get(ex.id)).includes('pa$$'), 'the upstream proxy\'s password is not in the record');
    const st = await gw.service.getStatus();
    assert.deepEqual(st.upstreamProxy, { proxy: `127.0.0.1:${corp.port}`, noProxy: [] });
    assert.ok(!JSON.stringify(st).includes('pa$$'), 'nor in the status');
  });

  test('the upstream proxy\'s password is masked in the record like a stored credential (an agent that learned it cannot leave it there)', async () => {
    const body = 'the corp proxy password is pa$$ word, as Basic ' + CORP.slice(6);
    const r = await curlVia(g, ['--data-binary', body, '-H', `x-leak: pa$$ word`, `${up.url}/echo?leak`]);
    assert.equal(r.code, 0, r.stderr);
    let row: { id: string } | undefined;
    for (let i = 0; i < 100 && !row; i++) {
      row = gw.service.store.exchanges.list({ limit: 20 }).find((e) => e.path === '/echo?leak' && e.endedAt !== null);
      if (!row) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(row, 'the exchange was recorded');
    const ex = gw.service.store.exchanges.get(row.id)!;
    const text = ex.requestBody!.toString('utf8');
    assert.ok(!text.includes('pa$$ word') && !text.includes(CORP.slice(6)), text);
    assert.match(text, /\[masked\]/);
    assert.equal(ex.requestHeaders['x-leak'], '[masked]');
    gw.service.store.exchanges.flush();
    assert.equal(readFileSync(gw.service.store.file).indexOf('pa$$ word'), -1, 'the password is in the database file');
  });

  test('plain HTTP: an absolute-form request to the upstream proxy with its credentials', async () => {
    const n = corp.seen.length;
    const r = await curlVia(g, [`${plain.url}/hello?via=corp`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello');
    assert.deepEqual(since(n, plain.port), [{ kind: 'request', target: `http://127.0.0.1:${plain.port}/hello?via=corp`, auth: CORP }]);
    const got = plain.requests.at(-1)!;
    assert.equal(got.url, '/hello?via=corp');
    assert.ok(!('proxy-authorization' in got.headers), 'the upstream never sees a Proxy-Authorization');
  });

  test('an upstream whose certificate does not verify gets 502 through the tunnel too, and no request reaches it', async () => {
    const before = bad.requests.length;
    const r = await curlVia(g, ['-w', '\n%{http_code}', `${bad.url}/hello`]);
    assert.match(r.stdout, new RegExp(`could not be verified .*reached through the upstream proxy 127\\.0\\.0\\.1:${corp.port}: if that proxy inspects TLS`));
    assert.match(r.stdout, /\n502$/);
    assert.equal(bad.requests.length, before);
  });

  test('WebSocket (wss://) through the upstream proxy\'s tunnel', async () => {
    // An upstream of its own: no connection Airlock opened for another test (kept alive, or opened
    // early for a CONNECT and not used) can carry this one.
    const wsUp = await startUpstream({ pki, websocket: 'ws' });
    more.push(() => wsUp.close());
    const n = corp.seen.length;
    const sock = await tlsTunnel(gw.proxyPort, '127.0.0.1', wsUp.port, gw.basic(g.user, g.token), readFileSync(gw.caPath, 'utf8'));
    try {
      assert.equal(await wsEchoOver(sock, wsUp.wsUrl, 'through corp'), 'through corp');
      assert.deepEqual(since(n, wsUp.port), [{ kind: 'connect', target: `127.0.0.1:${wsUp.port}`, auth: CORP }]);
    } finally {
      sock.destroy();
    }
  });

  test('WebSocket (ws://) to a plain upstream: Airlock\'s side goes through the upstream proxy in a tunnel', async () => {
    const n = corp.seen.length;
    const t = await openTunnel(gw.proxyPort, `127.0.0.1:${plain.port}`, gw.basic(g.user, g.token));
    assert.equal(t.status, 200);
    t.socket.resume();
    try {
      assert.equal(await wsEchoOver(t.socket, plain.wsUrl, 'plain through corp'), 'plain through corp');
      // The early TLS connection Airlock opens when a CONNECT arrives is a tunnel too (closed once the
      // tunnel turns out to carry plain HTTP); the WebSocket's own connection is the second: exactly two.
      const seen = since(n, plain.port);
      assert.ok(seen.length === 2 && seen.every((x) => x.kind === 'connect' && x.target === `127.0.0.1:${plain.port}` && x.auth === CORP), JSON.stringify(seen));
    } finally {
      t.socket.destroy();
    }
  });

  test('the upstream proxy itself is refused to agents (403, builtin:deny-upstream-proxy), and it sees nothing', async () => {
    const n = corp.seen.length;
    const r = await curlVia(g, ['-w', '\n%{http_code}', `http://127.0.0.1:${corp.port}/http://example.com/`]);
    assert.match(r.stdout, /upstream proxy/);
    assert.match(r.stdout, /\n403$/);
    assert.equal(corp.seen.length, n);
    const loaded = gw.service.store.audit.list({}).filter((e) => e.action === 'policy.loaded').at(-1)!;
    assert.ok(JSON.stringify(loaded.details).includes(`"builtin:deny-upstream-proxy","match":"127.0.0.1:${corp.port} (upstreamProxy)"`), JSON.stringify(loaded.details));
  });

  test('a CONNECT to the upstream proxy itself is refused without Airlock ever connecting to it', async () => {
    const n = corp.seen.length;
    const r = await curlVia(g, ['-w', '\n%{http_code}', '--max-time', '10', `https://127.0.0.1:${corp.port}/`]);
    assert.match(r.stdout, /\n403$/, r.stdout + r.stderr);
    await new Promise((res) => setTimeout(res, 200)); // an early connection would have been opened by now
    assert.deepEqual(corp.seen.slice(n), []);
  });

  test('git: a held push is analysed (remote cache fetched through the upstream proxy) and forwarded through it after approval, with the stored credential', async () => {
    // The git server wants Basic auth; only Airlock holds the credential (the agent has none).
    const password = 'git-secret-4711';
    const gs: GitServer = await startGitServer({ pki, auth: { username: 'alice', password } });
    more.push(() => gs.close());
    await gw.service.credentials.set(`127.0.0.1:${gs.port}`, password, { username: 'alice' });
    const { push, reviewId, oid, n } = await heldPush(gs, 'corp', 'corp.txt', { HTTPS_PROXY: `http://bot:${g.token}@127.0.0.1:${gw.proxyPort}`, GIT_SSL_CAINFO: gw.caPath });
    const review = await gw.service.getReview({ id: reviewId });
    assert.match(JSON.stringify(review.refs), /corp\.txt/, "the analysis (its diff needs the remote cache) ran");
    await gw.service.approveReview({ id: reviewId });
    const res = await push;
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await gs.refs('corp'))['refs/heads/main'], oid);
    const seen = since(n, gs.port);
    // Airlock's own fetch for the analysis (git with http.proxy: libcurl asks once without credentials,
    // then with them) and the forward after approval: all to the git server through the upstream proxy.
    assert.ok(seen.every((s) => s.kind === 'connect' && s.target === `127.0.0.1:${gs.port}`), JSON.stringify(seen));
    assert.ok(seen.filter((s) => s.auth !== undefined).every((s) => s.auth === CORP), JSON.stringify(seen));
    assert.ok(seen.filter((s) => s.auth === CORP).length >= 2, JSON.stringify(seen));
    const posts = gs.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack'));
    assert.deepEqual(posts.map((r) => r.status), [200], 'the push reached the git server once, after approval, with the credential Airlock injected');
  });

  test('git over plain HTTP: the held push is forwarded to the upstream proxy in absolute form after approval', async () => {
    const gs: GitServer = await startGitServer({ pki, tls: false });
    more.push(() => gs.close());
    // libcurl reads only the lower-case http_proxy (HTTP_PROXY is ignored: httpoxy).
    const { push, reviewId, oid, n } = await heldPush(gs, 'plaincorp', 'plain.txt', { http_proxy: `http://bot:${g.token}@127.0.0.1:${gw.proxyPort}` });
    assert.equal(gs.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/git-receive-pack')).length, 0, 'nothing forwarded before approval');
    await gw.service.approveReview({ id: reviewId });
    const res = await push;
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await gs.refs('plaincorp'))['refs/heads/main'], oid);
    const posts = since(n, gs.port).filter((x) => x.kind === 'request' && x.target.endsWith('/plaincorp.git/git-receive-pack'));
    assert.deepEqual(posts, [{ kind: 'request', target: `http://127.0.0.1:${gs.port}/plaincorp.git/git-receive-pack`, auth: CORP }]);
  });
});

describe('when the upstream proxy fails', () => {
  test('wrong credentials: 502 saying the upstream proxy refused them (never a 407 the agent would take for Airlock\'s)', async () => {
    const wrong = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, upstreamProxy: `http://corp:nope@127.0.0.1:${corp.port}`, upstreamNoProxy: [] } });
    more.push(() => wrong.close());
    const t = { ...g, proxyUrl: wrong.proxyUrl, caPath: wrong.caPath, token: await wrong.addAgent('bot') };
    const https = await curlVia(t, ['-w', '\n%{http_code}', `${up.url}/hello`]);
    assert.match(https.stdout, new RegExp(`upstream proxy 127\\.0\\.0\\.1:${corp.port} refused a tunnel to 127\\.0\\.0\\.1:${up.port}: 407 .*did not accept the credentials`));
    assert.match(https.stdout, /\n502$/);
    const plainRes = await curlVia(t, ['-w', '\n%{http_code}', `${plain.url}/hello`]);
    assert.match(plainRes.stdout, /upstream proxy .* refused .*407.*did not accept the credentials/);
    assert.match(plainRes.stdout, /\n502$/);
    assert.ok(!/pa\$\$|nope/.test(https.stdout + plainRes.stdout), 'no credential in the messages');
  });

  test('upstream proxy down: 502 naming it, and the gateway keeps serving once it is back', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const down = await startTestAirlock({
      upstreamCa: [pki.caPath], log: createLogger('warn', (l) => lines.push(l)),
      options: { consolePort: null, upstreamProxy: `http://127.0.0.1:${port}`, upstreamNoProxy: [], connectTimeoutMs: 3000 },
    });
    for (let i = 0; i < 100 && !lines.some((l) => l.includes('cannot be reached')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(lines.some((l) => l.includes(`the upstream proxy 127.0.0.1:${port} cannot be reached (ECONNREFUSED)`)), 'a warning at start: ' + lines.join('\n'));
    more.push(() => down.close());
    const t = { ...g, proxyUrl: down.proxyUrl, caPath: down.caPath, token: await down.addAgent('bot') };
    for (const url of [`${up.url}/hello`, `${plain.url}/hello`]) {
      const r = await curlVia(t, ['-w', '\n%{http_code}', url]);
      assert.match(r.stdout, new RegExp(`could not reach (${url.startsWith('https') ? 'its upstream proxy' : '.* through its upstream proxy'}) 127\\.0\\.0\\.1:${port}.*ECONNREFUSED`), r.stdout);
      assert.match(r.stdout, /\n502$/);
    }
    // The same port now answers as a proxy without credentials: the next request goes through.
    const server = http.createServer();
    createProxy(server);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    more.push(() => new Promise<void>((r) => server.close(() => r())));
    const ok = await curlVia(t, [`${up.url}/hello`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'hello');
  });

  test('upstreamNoProxy: listed hosts go direct, the rest through the upstream proxy', async () => {
    const direct = await startTestAirlock({ upstreamCa: [pki.caPath], options: { consolePort: null, upstreamProxy: `http://corp:${encodeURIComponent('pa$$ word')}@127.0.0.1:${corp.port}`, upstreamNoProxy: ['127.0.0.0/8'] } });
    more.push(() => direct.close());
    const t = { ...g, proxyUrl: direct.proxyUrl, caPath: direct.caPath, token: await direct.addAgent('bot') };
    const n = corp.seen.length;
    const a = await curlVia(t, [`${up.url}/hello`]);
    assert.equal(a.stdout, 'hello', a.stderr);
    assert.equal(since(n, up.port).length, 0, `an address in 127.0.0.0/8 went direct: ${JSON.stringify(since(n, up.port))}`);
    const b = await curlVia(t, [`https://localhost:${up.port}/hello`]);
    assert.equal(b.stdout, 'hello', b.stderr);
    assert.deepEqual(since(n, up.port).map((s) => s.target), [`localhost:${up.port}`], 'a name not listed went through the upstream proxy');
  });
});

describe('UpstreamProxy settings', () => {
  test('bypass: names with their subdomains, addresses, ranges, IPv6, *', () => {
    const p = new UpstreamProxy('http://proxy.corp:3128', ['internal.example', '.svc', '10.0.0.0/8', '::1', 'fd00::/8']);
    for (const h of ['internal.example', 'git.internal.example', 'a.svc', '10.1.2.3', '::1', '[::1]', 'fd12::1', 'INTERNAL.EXAMPLE.']) assert.equal(p.bypass(h), true, h);
    for (const h of ['example.com', 'notinternal.example', 'svc.example', '11.0.0.1', '::2', 'github.com']) assert.equal(p.bypass(h), false, h);
    assert.equal(new UpstreamProxy('http://p:1', ['*']).bypass('anything.example'), true);
    assert.equal(p.display, 'proxy.corp:3128');
    assert.equal(new UpstreamProxy('http://p', []).port, 80);
  });

  test('bad settings are one clear sentence, with no password in it', () => {
    assert.throws(() => new UpstreamProxy('https://p:1', []), /https:\/\/ proxies are not supported/);
    assert.throws(() => new UpstreamProxy('socks5://p:1', []), /socks5:\/\/ proxies are not supported/);
    assert.throws(() => new UpstreamProxy('not a url', []), /is not a URL/);
    assert.throws(() => new UpstreamProxy('http://u:secret@p:1/path', []), (e: Error) => /expected http:\/\//.test(e.message) && !e.message.includes('secret'));
    assert.throws(() => new UpstreamProxy('http://p:1', ['10.0.0.0/99']), /is not an address range/);
  });

  test('airlock serve refuses to start with a bad upstreamProxy', async () => {
    await assert.rejects(startTestAirlock({ options: { consolePort: null, upstreamProxy: 'https://corp:3128' } }), /proxies are not supported/);
  });
});
