// `airlock exchanges export --format har`, end to end: real clients (curl, undici) through a real in-process
// Airlock to a real HTTPS upstream, the real CLI writing the HAR from the SQLite file, and a real consumer:
// Chromium replaying the file through Playwright's routeFromHAR (no upstream, no proxy: only the HAR answers).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import type { Browser } from 'playwright-core';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import { createLogger } from '../../main/log';
import { startAirlock, type AirlockService } from '../../main/service';
import type { HarEntry, HarPage } from '../../main/store/har';
import { launchChromium } from '../helpers/browser';
import { createTestPki, type TestPki } from '../helpers/test-ca';
import { expectedBytes, sha256Hex, startUpstream, type Upstream } from '../helpers/https-upstream';
import { runCommand, type RunResult } from '../helpers/run';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { airlock, cliEnv, waitFor } from './cli';

const AGENT = 'har-bot';
const OTHER = 'har-other';
const SECRET = 'Bearer har-secret-token-7f3a';
const CAP = 1024;

interface Har {
  log: { version: string; creator: { name: string; version: string }; entries: HarEntry[]; pages: HarPage[]; comment: string };
}

let pki: TestPki;
let upstream: Upstream;
let dataDir: string;
let outDir: string;
let service: AirlockService;
let proxyUrl: string;
let caPath: string;
const tokens: Record<string, string> = {};
let browser: Browser | null = null;

function dispatcherFor(agent: string): ProxyAgent {
  return new ProxyAgent({
    uri: proxyUrl,
    token: `Basic ${Buffer.from(`${agent}:${tokens[agent]}`).toString('base64')}`,
    requestTls: { ca: readFileSync(caPath, 'utf8') },
  });
}

function curl(args: string[]): Promise<RunResult> {
  return runCommand('curl', ['-sS', '--max-time', '15', '--proxy', proxyUrl, '--proxy-user', `${AGENT}:${tokens[AGENT]}`, '--cacert', caPath, ...args], {
    env: cliEnv(),
    timeoutMs: 20_000,
  });
}

async function exportHar(args: string[]): Promise<{ r: RunResult; har: Har | null; file: string }> {
  const file = join(outDir, `export-${Math.random().toString(36).slice(2)}.har`);
  const r = await airlock(['exchanges', 'export', '--data-dir', dataDir, '--out', file, ...args]);
  return { r, file, har: r.code === 0 ? (JSON.parse(readFileSync(file, 'utf8')) as Har) : null };
}

function entryFor(har: Har, method: string, path: string): HarEntry {
  const e = har.log.entries.find((x) => x.request.method === method && new URL(x.request.url).pathname + new URL(x.request.url).search === path);
  assert.ok(e, `no entry for ${method} ${path} in ${har.log.entries.map((x) => `${x.request.method} ${x.request.url}`).join(', ')}`);
  return e;
}

const paths = {
  hello: '/hello?who=agent&lang=en',
  bytes: '/bytes?n=300',
  big: '/bytes?n=5000',
  gzip: '/echo-auth-encoded?enc=gzip',
  json: '/echo',
  binary: '/echo?binary=1',
};
const JSON_BODY = JSON.stringify({ title: 'Merge me', body: 'ünïcode ✓' });
const BINARY_BODY = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0xc3]); // not UTF-8

before(async () => {
  pki = await createTestPki();
  upstream = await startUpstream({ pki });
  dataDir = await makeTempDir('airlock-har-');
  outDir = await makeTempDir('airlock-har-out-');
  const running = await startAirlock({
    dataDir, log: createLogger('error'), proxyPort: 0, consolePort: null, upstreamCa: [pki.caPath], bodyCaptureBytes: CAP,
  });
  service = running.service;
  proxyUrl = running.proxyUrl;
  caPath = running.caPath;
  for (const a of [AGENT, OTHER]) {
    service.store.agents.add(a, ['ai-coding']);
    tokens[a] = newAgentToken();
    service.store.agents.addToken(a, hashToken(tokens[a]!), 'har test', null);
  }

  // curl: a GET with a query, a cookie and the agent's own credential.
  const r = await curl(['-H', `Authorization: ${SECRET}`, '-H', 'Cookie: sid=cookie-secret-99; theme=dark', `${upstream.url}${paths.hello}`]);
  assert.equal(r.code, 0, r.stderr);
  // undici, one connection: binary, capped, gzip-encoded answers and two POSTs.
  const d = dispatcherFor(AGENT);
  for (const p of [paths.bytes, paths.big]) await (await request(`${upstream.url}${p}`, { dispatcher: d })).body.arrayBuffer();
  await (await request(`${upstream.url}${paths.gzip}`, { dispatcher: d, headers: { authorization: SECRET, 'accept-encoding': 'gzip' } })).body.arrayBuffer();
  await (await request(`${upstream.url}${paths.json}`, { dispatcher: d, method: 'POST', body: JSON_BODY, headers: { 'content-type': 'application/json' } })).body.arrayBuffer();
  await (await request(`${upstream.url}${paths.binary}`, { dispatcher: d, method: 'POST', body: BINARY_BODY, headers: { 'content-type': 'application/octet-stream' } })).body.arrayBuffer();
  await d.close();
  // Another agent, another session.
  const o = dispatcherFor(OTHER);
  await (await request(`${upstream.url}/status/404`, { dispatcher: o })).body.arrayBuffer();
  await o.close();
  await waitFor('all 7 exchanges recorded', () => (service.store.exchanges.list({ limit: 100 }).filter((x) => x.endedAt !== null).length >= 7 ? true : undefined), 5_000);
  service.store.exchanges.flush();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await service?.close();
  await upstream?.close();
  if (dataDir) await removeDir(dataDir);
  if (outDir) await removeDir(outDir);
});

describe('airlock exchanges export --format har', { concurrency: 1 }, () => {
  let har: Har;
  let file: string;

  test('a HAR 1.2 log: every exchange an entry in start order, each session a page, the file 0600 and audited', async () => {
    const x = await exportHar([]);
    assert.equal(x.r.code, 0, x.r.stderr);
    assert.equal(x.r.stderr.trim(), `7 exchanges written to ${x.file}`);
    har = x.har!;
    file = x.file;
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(har.log.version, '1.2');
    assert.equal(har.log.creator.name, 'Airlock');
    assert.match(har.log.comment, /credentials are masked/);
    assert.equal(har.log.entries.length, 7);
    const ids = har.log.entries.map((e) => Number(e._airlock.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
    const starts = har.log.entries.map((e) => e.startedDateTime);
    assert.deepEqual(starts, [...starts].sort());
    // One page per connection an entry came on (curl's, undici's, the other agent's), each naming its agent.
    const pages = new Map(har.log.pages.map((p) => [p.id, p]));
    assert.equal(pages.size, har.log.pages.length);
    assert.deepEqual([...pages.keys()].sort(), [...new Set(har.log.entries.map((e) => e.pageref))].sort());
    assert.ok(pages.size >= 3, `${pages.size} pages`);
    for (const e of har.log.entries) {
      const page = pages.get(e.pageref!);
      assert.ok(page, `entry ${e._airlock.id} has no page`);
      assert.equal(page._airlock.agent, e._airlock.agent);
      assert.equal(page.title, `${e._airlock.agent}: session ${e.pageref} from ${page._airlock.clientAddress}`);
      assert.equal(e.connection, e.pageref);
      // HAR's required fields, and phases that add up to the entry's time.
      assert.equal(e.request.httpVersion, 'HTTP/1.1');
      assert.equal(e.request.headersSize, -1);
      assert.ok(Array.isArray(e.request.cookies) && Array.isArray(e.request.queryString) && Array.isArray(e.response.cookies));
      assert.deepEqual(e.cache, {});
      const t = e.timings;
      for (const k of ['send', 'wait', 'receive'] as const) assert.ok(t[k] >= 0, `${k} ${t[k]}`);
      const sum = [t.blocked, t.dns, t.connect, t.send, t.wait, t.receive].filter((n) => n >= 0).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - e.time) < 1e-6, `phases ${JSON.stringify(t)} add up to ${sum}, time ${e.time}`);
      assert.ok(t.ssl === -1 || t.ssl <= t.connect);
    }
    // The audit event names the file's digest: verify --export recognises it.
    const events = service.store.audit.list().filter((e) => e.action === 'exchanges.exported' && e.subject === 'har');
    assert.equal(events.length, 1);
    assert.equal((events[0]!.details as { sha256: string }).sha256, sha256Hex(readFileSync(file)));
    const v = await airlock(['audit', 'verify', '--data-dir', dataDir, '--export', file]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  test('headers, cookies and the query as recorded: the agent\'s credentials masked, never in the file', () => {
    const e = entryFor(har, 'GET', paths.hello);
    assert.equal(e.request.url, `${upstream.url}${paths.hello}`);
    assert.deepEqual(e.request.queryString, [{ name: 'who', value: 'agent' }, { name: 'lang', value: 'en' }]);
    assert.equal(e.request.headers.find((h) => h.name === 'authorization')?.value, '[masked]');
    assert.deepEqual(e.request.cookies, [{ name: '', value: '[masked]' }]);
    assert.equal(e.response.status, 200);
    assert.equal(e.response.statusText, 'OK');
    assert.deepEqual(e.response.content, { size: 5, mimeType: 'text/plain; charset=utf-8', text: 'hello' });
    assert.equal(e.response.bodySize, 5);
    assert.equal(e._airlock.agent, AGENT);
    assert.equal(e._airlock.kind, 'other');
    assert.equal(e._airlock.decision?.verdict, 'allow');
    assert.match(e.comment, /^har-bot: other; allow by builtin:allow-other/);
    const text = readFileSync(file, 'utf8');
    for (const secret of ['har-secret-token-7f3a', 'cookie-secret-99']) assert.equal(text.indexOf(secret), -1, `${secret} in the HAR`);
  });

  test('bodies: binary as base64 (exact bytes), gzip decoded with its compression, capped ones say so, request bodies as sent', () => {
    const bin = entryFor(har, 'GET', paths.bytes).response.content;
    assert.equal(bin.encoding, 'base64');
    assert.ok(Buffer.from(bin.text!, 'base64').equals(expectedBytes(300)));
    assert.equal(bin.size, 300);

    const big = entryFor(har, 'GET', paths.big);
    assert.ok(Buffer.from(big.response.content.text!, 'base64').equals(expectedBytes(CAP)));
    assert.equal(big.response.content.comment, `first ${CAP} bytes of 5000 kept (bodyCaptureBytes)`);
    assert.equal(big.response.bodySize, 5000);
    assert.equal(big._airlock.responseBody.complete, false);
    assert.equal(big._airlock.responseBody.sha256, sha256Hex(expectedBytes(5000)));

    const gz = entryFor(har, 'GET', paths.gzip);
    const recorded = service.store.exchanges.get(gz._airlock.id)!;
    const decoded = gunzipSync(recorded.responseBody!);
    assert.equal(gz.response.content.text, decoded.toString('utf8'));
    assert.equal(gz.response.content.size, decoded.length);
    assert.equal(gz.response.content.compression, decoded.length - recorded.responseBody!.length);
    assert.equal(gz.response.bodySize, recorded.responseBytes);
    assert.deepEqual(JSON.parse(gz.response.content.text!), { youSent: '[masked]', acceptEncoding: 'gzip' });

    const post = entryFor(har, 'POST', paths.json);
    assert.deepEqual(post.request.postData, { mimeType: 'application/json', text: JSON_BODY });
    assert.equal(post.request.bodySize, Buffer.byteLength(JSON_BODY));
    assert.equal(post.response.content.text, JSON_BODY);

    const bpost = entryFor(har, 'POST', paths.binary);
    assert.equal(bpost.request.postData?._encoding, 'base64');
    assert.ok(Buffer.from(bpost.request.postData!.text, 'base64').equals(BINARY_BODY));
  });

  test('--agent and --session narrow it; an unknown session is one line, exit 2, and no file', async () => {
    const other = await exportHar(['--agent', OTHER]);
    assert.equal(other.r.code, 0, other.r.stderr);
    assert.deepEqual(other.har!.log.entries.map((e) => e.request.url), [`${upstream.url}/status/404`]);
    assert.equal(other.har!.log.entries[0]!.response.status, 404);
    assert.equal(other.har!.log.pages.length, 1);
    assert.match(other.har!.log.comment, /\(agent har-other\)/);

    const curlSession = entryFor(har, 'GET', paths.hello).pageref!;
    const one = await exportHar(['--session', curlSession]);
    assert.equal(one.r.code, 0, one.r.stderr);
    assert.deepEqual(one.har!.log.entries.map((e) => e._airlock.id), [entryFor(har, 'GET', paths.hello)._airlock.id]);
    assert.deepEqual(one.har!.log.pages.map((p) => p.id), [curlSession]);

    // The same filter works for the other formats.
    const jsonl = await airlock(['exchanges', 'export', '--data-dir', dataDir, '--session', curlSession]);
    assert.equal(jsonl.code, 0, jsonl.stderr);
    assert.equal(jsonl.stdout.trim().split('\n').length, 1);

    const none = await exportHar(['--session', 'no-such-session']);
    assert.equal(none.r.code, 2);
    assert.equal(none.r.stderr.trim(), 'airlock exchanges: no session "no-such-session" in the record (airlock sessions lists them)');
    assert.equal(existsSync(none.file), false);
  });

  test('the API (exportHar): the same entries as the CLI\'s file, audited with its channel; bad queries are one sentence', async () => {
    const curlSession = entryFor(har, 'GET', paths.hello).pageref!;
    const v = await service.exportHar({ sessionId: curlSession, via: 'desktop' });
    assert.match(v.fileName, new RegExp(`^airlock-session-${curlSession}-\\d{8}T\\d{6}Z\\.har$`));
    const fromApi = JSON.parse(v.text) as Har;
    const fromCli = (await exportHar(['--session', curlSession])).har!;
    assert.deepEqual(fromApi.log.entries, fromCli.log.entries);
    assert.deepEqual(fromApi.log.pages, fromCli.log.pages);
    assert.equal(v.bytes, Buffer.byteLength(v.text));
    assert.equal(v.sha256, sha256Hex(v.text));
    const ev = service.store.audit.list().filter((e) => e.action === 'exchanges.exported').find((e) => (e.details as { sha256: string }).sha256 === v.sha256);
    assert.ok(ev, 'the API export is audited');
    assert.deepEqual({ ...(ev.details as Record<string, unknown>) }, {
      count: 1, since: null, until: null, agent: null, session: curlSession, out: 'download (desktop)', sha256: v.sha256, bytes: v.bytes,
    });
    const since = await service.exportHar({ since: entryFor(har, 'GET', paths.gzip).startedDateTime });
    assert.deepEqual(JSON.parse(since.text).log.entries.map((e: HarEntry) => e._airlock.id), har.log.entries.slice(har.log.entries.indexOf(entryFor(har, 'GET', paths.gzip))).map((e) => e._airlock.id));

    await assert.rejects(service.exportHar({ sessionId: 'nope' }), { code: 'not-found', message: 'no session nope in the record' });
    await assert.rejects(service.exportHar({ since: 'yesterday' }), { code: 'bad-request', message: /^"since" must be a date or an ISO time/ });
    await assert.rejects(service.exportHar({ since: '2026-02-30T00:00:00Z' }), { code: 'bad-request', message: /^"since" must be a date or an ISO time/ });
    await assert.rejects(service.exportHar({ session: 'x' } as never), { code: 'bad-request', message: /^Unknown exportHar filter "session"/ });
    await assert.rejects(service.exportHar({ via: 'email' } as never), { code: 'bad-request' });
  });

  test('Chromium replays the file (Playwright routeFromHAR): the recorded answers, byte for byte, with no upstream', async () => {
    browser = await launchChromium();
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    // Only the HAR answers: anything not in it is aborted, and the upstream is not reachable from here.
    await context.routeFromHAR(file, { notFound: 'abort' });
    const page = await context.newPage();
    const res = await page.goto(`${upstream.url}${paths.hello}`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.evaluate(() => document.body.innerText), 'hello');
    const upstreamCalls = upstream.requests.length;
    const got = await page.evaluate(async (p) => {
      const bytes = new Uint8Array(await (await fetch(p.bytes)).arrayBuffer());
      const json = await (await fetch(p.gzip)).json();
      const echo = await (await fetch(p.json, { method: 'POST', body: p.body, headers: { 'content-type': 'application/json' } })).text();
      return { bytes: Array.from(bytes), json, echo };
    }, { ...paths, body: JSON_BODY });
    assert.ok(Buffer.from(got.bytes).equals(expectedBytes(300)));
    assert.deepEqual(got.json, { youSent: '[masked]', acceptEncoding: 'gzip' });
    assert.equal(got.echo, JSON_BODY);
    assert.equal(upstream.requests.length, upstreamCalls, 'the replay reached the upstream');
    await context.close();
  });
});
