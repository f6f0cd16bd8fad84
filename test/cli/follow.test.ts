// `airlock exchanges --follow`: the real CLI following a real `airlock serve` (child processes) while curl
// sends requests through the proxy to a real HTTPS upstream. The follower reads the console's event stream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AIRLOCK_BIN, cleanCliEnv, REPO_ROOT, spawnServe, type ServeProcess } from '../helpers/airlock';
import { createTestPki, makeTempDir, removeDir, runCommand, startUpstream, type TestPki, type Upstream } from '../helpers/index';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import type { ExchangeView } from '../../main/contract/views';

let pki: TestPki;
let upstream: Upstream;
let dataDir: string;
let serve: ServeProcess;
const tokens: Record<string, string> = {};
const children: ChildProcess[] = [];

function cli(args: string[]) {
  return runCommand(process.execPath, [AIRLOCK_BIN, ...args, '--data-dir', dataDir], { env: cleanCliEnv(), cwd: REPO_ROOT, timeoutMs: 30_000 });
}

function curl(agent: string, path: string) {
  return runCommand('curl', ['-sS', '--max-time', '15', '--proxy', serve.info.proxyUrl, '--proxy-user', `${agent}:${tokens[agent]}`,
    '--cacert', serve.info.caPath, `${upstream.url}${path}`], { env: cleanCliEnv(), timeoutMs: 20_000 });
}

/** A follower: its stdout so far, a wait for a line that matches, and its exit. */
function follow(args: string[]) {
  const child = spawn(process.execPath, [AIRLOCK_BIN, 'exchanges', '--follow', '--data-dir', dataDir, ...args], { env: cleanCliEnv(), cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { err += c; });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    exited,
    async waitFor(re: RegExp, what: string): Promise<void> {
      for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re, `${what}; stdout so far:\n${out}\nstderr: ${err}`);
    },
  };
}

before(async () => {
  pki = await createTestPki();
  upstream = await startUpstream({ pki });
  dataDir = await makeTempDir('airlock-follow-');
  serve = await spawnServe(dataDir, ['--proxy-port', '0', '--console-port', '0', '--upstream-ca', pki.caPath]);
  for (const agent of ['follow-bot', 'other-bot']) {
    const r = await cli(['agent', 'add', agent, '--json']);
    assert.equal(r.code, 0, r.stderr);
    tokens[agent] = (JSON.parse(r.stdout) as { token: string }).token;
  }
  // Recorded before anyone follows: the backlog.
  for (let i = 1; i <= 3; i++) assert.equal((await curl('follow-bot', `/hello?before=${i}`)).code, 0);
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await serve?.close();
  await upstream?.close();
  if (dataDir) await removeDir(dataDir);
});

test('the last exchanges, then each new one as it is recorded; --agent filters; Ctrl-C ends it with 0', async () => {
  // Let the gateway's batch reach the file, so the backlog has all three.
  for (let i = 0; i < 40 && !/before=3/.test((await cli(['exchanges'])).stdout); i++) await new Promise((r) => setTimeout(r, 100));
  const f = follow(['--agent', 'follow-bot', '--limit', '2']);
  await f.waitFor(/before=3/, 'the backlog');
  const lines = f.out().trimEnd().split('\n');
  assert.match(lines[0]!, /^\s*ID\s+TIME\s+AGENT\s+METHOD\s+URL\s+KIND\s+DECISION\s+STATUS\s+BYTES\s+MS$/);
  assert.equal(lines.length, 3, 'the header and the last 2 (--limit 2)');
  assert.match(lines[1]!, /before=2/);
  assert.match(lines[2]!, /before=3/);

  assert.equal((await curl('other-bot', '/hello?by=other')).code, 0);
  assert.equal((await curl('follow-bot', '/hello?live=1')).code, 0);
  await f.waitFor(/live=1/, 'the new exchange, live');
  const live = f.out().trimEnd().split('\n').at(-1)!;
  assert.match(live, /^\s*\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+follow-bot\s+GET\s+https:\/\/127\.0\.0\.1:\d+\/hello\?live=1\s+other\s+allow\s+200\s+0\/5\s+\d+$/);
  assert.doesNotMatch(f.out(), /by=other/, '--agent follow-bot shows no other agent');
  assert.equal(f.out().match(/before=3/g)?.length, 1, 'nothing shown twice');

  f.child.kill('SIGINT');
  assert.equal(await f.exited, 0);
  assert.equal(f.err(), '');
});

test('started during steady traffic: no exchange missed where the backlog ends and the live rows begin, none twice', async () => {
  const dispatcher = new ProxyAgent({
    uri: serve.info.proxyUrl,
    token: `Basic ${Buffer.from(`follow-bot:${tokens['follow-bot']}`).toString('base64')}`,
    requestTls: { ca: readFileSync(serve.info.caPath, 'utf8') },
  });
  let f: ReturnType<typeof follow> | null = null;
  try {
    // Requests back to back; the follower starts after the 100th, while the gateway's batch holds exchanges
    // not yet in the file, and the traffic goes on until it has shown live ones (bounded).
    let i = 0;
    for (; i < 5000; i++) {
      if (i === 100) f = follow(['--json', '--agent', 'follow-bot', '--limit', '30']);
      await (await request(`${upstream.url}/hello?steady=${i}`, { dispatcher })).body.arrayBuffer();
      if (i > 100 && i % 20 === 0 && f!.out().split('\n').length > 80) break;
    }
    await (await request(`${upstream.url}/hello?steady=end`, { dispatcher })).body.arrayBuffer();
    await f!.waitFor(/steady=end"/, 'the last request, live');
    const rows = f!.out().trimEnd().split('\n').map((l) => JSON.parse(l) as ExchangeView);
    const ids = rows.map((x) => Number(x.id));
    assert.ok(rows.length > 80, `${rows.length} rows shown after ${i} requests`);
    assert.equal(new Set(ids).size, ids.length, 'an exchange shown twice');
    for (let k = 1; k < ids.length; k++) assert.equal(ids[k], ids[k - 1]! + 1, `a gap between ${ids[k - 1]} (${rows[k - 1]!.path}) and ${ids[k]} (${rows[k]!.path})`);
    assert.equal(rows.at(-1)!.path, '/hello?steady=end');
  } finally {
    f?.child.kill('SIGINT');
    await f?.exited;
    await dispatcher.close();
  }
});

test('live rows are masked as the record is: the agent\'s own credential in its path, a sensitive query value', async () => {
  const f = follow(['--json', '--limit', '1']);
  await f.waitFor(/\n/, 'the backlog line');
  const secret = 'AGENTOWNSECRET12345';
  const r = await runCommand('curl', ['-sS', '--max-time', '15', '--proxy', serve.info.proxyUrl, '--proxy-user', `follow-bot:${tokens['follow-bot']}`,
    '--cacert', serve.info.caPath, '-H', `Authorization: Bearer ${secret}`, `${upstream.url}/hello/${secret}?access_token=${secret}&page=2`], { env: cleanCliEnv(), timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  await f.waitFor(/page=2/, 'the exchange, live');
  f.child.kill('SIGINT');
  await f.exited;
  const live = JSON.parse(f.out().trimEnd().split('\n').at(-1)!) as ExchangeView;
  assert.equal(f.out().includes(secret), false, `the live row carries the secret: ${live.path}`);
  // The same text the record holds.
  const listed = JSON.parse((await cli(['exchanges', '--json', '--limit', '1'])).stdout) as ExchangeView[];
  assert.equal(live.path, listed[0]!.path);
  assert.match(live.path, /^\/hello\/\[masked\]\?access_token=\[masked\]&page=2$/);
});

test('--json: one ExchangeView per line; the gateway stopping ends it with one line and exit 1', async () => {
  const f = follow(['--json', '--limit', '1']);
  await f.waitFor(/\n/, 'the backlog line');
  const first = JSON.parse(f.out().split('\n')[0]!) as ExchangeView;
  assert.equal(typeof first.id, 'string');
  assert.equal(first.agent, 'follow-bot'); // the newest recorded is the previous tests' last one
  assert.equal((await curl('other-bot', '/bytes?n=7')).code, 0);
  await f.waitFor(/bytes\?n=7/, 'the new exchange as JSON');
  const x = JSON.parse(f.out().trimEnd().split('\n').at(-1)!) as ExchangeView;
  assert.equal(x.path, '/bytes?n=7');
  assert.equal(x.agent, 'other-bot');
  assert.equal(x.responseBytes, 7);
  assert.equal(x.decision?.verdict, 'allow');

  await serve.close();
  assert.equal(await f.exited, 1);
  assert.equal(f.err(), 'airlock exchanges: the gateway stopped (its event stream ended); start it again and follow again\n');
});

test('without a running gateway, or with --before: one line, no stack', async () => {
  const none = await cli(['exchanges', '--follow']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^airlock exchanges: no Airlock gateway is running for .*; start one with `airlock serve`\n$/);
  const bad = await cli(['exchanges', '-f', '--before', '3']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'airlock exchanges: --follow shows the newest exchanges and those to come: --before does not go with it\n');
});
