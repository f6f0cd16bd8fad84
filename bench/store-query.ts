// `npm run bench:store`: the session view's queries over a large record.
// Records 100,000 realistic exchanges (1 KiB response bodies; several agents, hosts, kinds, verdicts,
// sessions) through the store API into a temp SQLite file, reopens it (as `airlock exchanges` does),
// then times one page of 50, newest first: unfiltered and with each filter, on the first page and on a
// deep page (`before` = the middle matching row). Goal: a page of 50 from 100,000 recorded exchanges in
// under 50 ms (every run, i.e. the max). See bench/README.md.
//
//   npm run bench:store                      100,000 exchanges, 20 runs per query
//   npm run bench:store -- --rows=20000 --runs=10
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { openStore, type ExchangeFilter, type ExchangeRecord, type Store } from '../main/store';
import type { ExchangeView } from '../main/contract/views';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PAGE = 50;
const GOAL_MS = 50;

// ------------------------------------------------------------ options

function intArg(name: string, fallback: number): number {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`));
  if (!a) return fallback;
  const n = Number(a.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive whole number`);
    process.exit(2);
  }
  return n;
}
for (const a of process.argv.slice(2)) {
  if (!/^--(rows|runs)=/.test(a)) {
    console.error(`unknown option '${a}' (known: --rows=N, --runs=N)`);
    process.exit(2);
  }
}
const ROWS = intArg('rows', 100_000);
const RUNS = intArg('runs', 20);

// ------------------------------------------------------------ a deterministic, realistic workload

/** Small deterministic PRNG (mulberry32), so every run records the same data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(0x5e55);
function weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [v, w] of items) if ((r -= w) < 0) return v;
  return items[items.length - 1]![0];
}

/** Agents take sessions in this rotation: claude 45 %, codex 30 %, cursor 20 %, aider 5 % of sessions. */
const AGENT_ROTATION = ['claude', 'codex', 'claude', 'cursor', 'codex', 'claude', 'codex', 'claude', 'cursor', 'claude',
  'codex', 'claude', 'cursor', 'claude', 'codex', 'claude', 'cursor', 'codex', 'claude', 'aider'] as const;
const HOSTS = [
  ['api.github.com', 35], ['github.com', 15], ['registry.npmjs.org', 15], ['api.anthropic.com', 10], ['pypi.org', 6],
  ['files.pythonhosted.org', 5], ['objects.githubusercontent.com', 4], ['codeload.github.com', 3], ['crates.io', 3],
  ['proxy.golang.org', 2], ['static.crates.io', 1.5], ['gitlab.example.com', 0.5],
] as const;
const GIT_HOSTS = new Set(['github.com', 'gitlab.example.com']);

/** Sessions are agent connections: each lasts a few hundred exchanges, and a few are open at once (interleaved). */
const CONCURRENT_SESSIONS = 4;
const SESSION_LENGTH = 250;

/** A 1 KiB JSON response body. */
const BODY = (() => {
  const doc = (d: string) => JSON.stringify({ id: 1, node_id: 'MDEwOlJlcG9zaXRvcnkx', name: 'widgets', full_name: 'acme/widgets', private: true, description: d });
  return Buffer.from(doc('x'.repeat(1024 - doc('').length)));
})();
if (BODY.length !== 1024) throw new Error(`response body is ${BODY.length} bytes, not 1024`);

interface Tracked {
  agent: Map<string, number[]>;
  host: Map<string, number[]>;
  kind: Map<string, number[]>;
  verdict: Map<string, number[]>;
  sessionId: Map<string, number[]>;
}
type FilterKey = keyof Tracked;

function push(m: Map<string, number[]>, k: string, id: number): void {
  let a = m.get(k);
  if (!a) m.set(k, (a = []));
  a.push(id);
}

function record(store: Store, rows: number, t0: number): { tracked: Tracked; sessions: string[]; sessionAgent: Map<string, string> } {
  const tracked: Tracked = { agent: new Map(), host: new Map(), kind: new Map(), verdict: new Map(), sessionId: new Map() };
  const sessions: string[] = [];
  const sessionAgent = new Map<string, string>();
  let open: Array<{ id: string; agent: string; left: number }> = [];
  let sessionSeq = 0;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const newSession = (at: string) => {
    const agent = AGENT_ROTATION[sessionSeq++ % AGENT_ROTATION.length]!;
    const id = `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`; // shaped like the gateway's randomUUID()
    store.sessions.start({ id, agent, clientAddress: '127.0.0.1', startedAt: at });
    sessions.push(id);
    sessionAgent.set(id, agent);
    return { id, agent, left: Math.round(SESSION_LENGTH * (0.5 + rand())) };
  };
  for (let i = 0; i < rows; i++) {
    const startedMs = t0 + i * 250; // one exchange every 250 ms: 100,000 cover about 7 hours
    const at = new Date(startedMs).toISOString();
    while (open.length < CONCURRENT_SESSIONS) open.push(newSession(at));
    const s = open[Math.floor(rand() * open.length)]!;
    const host = weighted(HOSTS);
    const git = GIT_HOSTS.has(host);
    const kind: ExchangeRecord['kind'] = git ? weighted([['git-fetch', 90], ['git-push', 10]] as const) : weighted([['http-api', 92], ['other', 8]] as const);
    const verdict: NonNullable<ExchangeRecord['verdict']> = kind === 'git-push' ? 'review' : rand() < 0.04 ? 'deny' : 'allow';
    const method = kind === 'git-push' ? 'POST' : kind === 'git-fetch' ? (rand() < 0.5 ? 'GET' : 'POST') : rand() < 0.8 ? 'GET' : 'POST';
    const path = kind === 'git-push'
      ? '/acme/widgets.git/git-receive-pack'
      : kind === 'git-fetch'
        ? (method === 'GET' ? '/acme/widgets.git/info/refs?service=git-upload-pack' : '/acme/widgets.git/git-upload-pack')
        : `/repos/acme/widgets/pulls/${Math.floor(rand() * 5000)}/comments?per_page=100&page=${1 + Math.floor(rand() * 5)}`;
    const id = store.exchanges.nextId();
    const n = Number(id);
    const total = 20 + Math.round(rand() * 400);
    const denied = verdict === 'deny';
    store.exchanges.record({
      id,
      sessionId: s.id,
      agent: s.agent,
      startedAt: at,
      endedAt: new Date(startedMs + total).toISOString(),
      method,
      scheme: 'https',
      host,
      port: 443,
      path,
      kind,
      verdict,
      ruleId: denied ? 'deny-unknown-host' : kind === 'git-push' ? 'push-needs-review' : 'allow-read',
      explanation: denied ? 'Requests to this host are not allowed for agents.' : kind === 'git-push' ? 'Pushes by agents are held for a human.' : 'Allowed by policy.',
      status: denied ? 403 : 200,
      error: null,
      requestBytes: method === 'POST' ? 1800 : 0,
      responseBytes: denied ? 120 : BODY.length,
      timings: { connectMs: null, tlsMs: null, upstreamMs: denied ? null : total - 5, totalMs: total },
      requestHeaders: {
        host, 'user-agent': `${s.agent}/1.0 (node)`, accept: 'application/json', 'accept-encoding': 'gzip, br',
        authorization: 'Bearer [masked]', 'x-request-id': `${id}-${s.id}`,
      },
      responseHeaders: denied ? { 'content-type': 'text/plain' } : {
        'content-type': 'application/json; charset=utf-8', 'content-length': String(BODY.length), 'cache-control': 'private, max-age=60',
        etag: `"${id}"`, 'x-ratelimit-remaining': '4999', date: new Date(startedMs).toUTCString(),
      },
      requestBody: method === 'POST' ? BODY.subarray(0, 900) : null,
      responseBody: denied ? null : BODY,
      requestBodyComplete: true,
      responseBodyComplete: true,
      requestBodySha256: null,
      responseBodySha256: null,
      reviewId: null,
    });
    push(tracked.agent, s.agent, n);
    push(tracked.host, host, n);
    push(tracked.kind, kind, n);
    push(tracked.verdict, verdict, n);
    push(tracked.sessionId, s.id, n);
    if (--s.left === 0) {
      store.sessions.end(s.id, new Date(startedMs + total).toISOString());
      open = open.filter((x) => x !== s);
    }
    if (i % 2000 === 1999) store.exchanges.flush(); // bounds memory; batches are still 200 rows
  }
  store.exchanges.flush();
  return { tracked, sessions, sessionAgent };
}

// ------------------------------------------------------------ measuring

interface Case {
  name: string;
  filter: ExchangeFilter;
  /** Matching ids, oldest first (from the workload, to choose the deep cursor and to check the answer). */
  matching: number[];
}

interface Measured {
  query: string;
  filter: ExchangeFilter;
  page: 'first' | 'deep';
  before: string | null;
  matchingRows: number;
  rows: number;
  firstMs: number;
  medianMs: number;
  maxMs: number;
  pass: boolean;
  problem: string | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The answer must be exactly the expected ids: the 50 highest matching ids below the cursor, newest first. */
function check(rows: ExchangeView[], expected: number[]): string | null {
  if (rows.length !== expected.length) return `returned ${rows.length} rows, expected ${expected.length}`;
  for (let i = 0; i < rows.length; i++) {
    if (Number(rows[i]!.id) !== expected[i]) return `row ${i} is id ${rows[i]!.id}, expected ${expected[i]}`;
  }
  return null;
}

function measure(store: Store, c: Case, page: 'first' | 'deep'): Measured {
  const mid = c.matching[Math.floor(c.matching.length / 2)];
  const before = page === 'deep' && mid !== undefined ? String(mid) : undefined;
  const below = before === undefined ? c.matching : c.matching.filter((id) => id < Number(before));
  const expected = below.slice(-PAGE).reverse();
  const times: number[] = [];
  let rows: ExchangeView[] = [];
  // No warm-up: the first run (statement prepared, pages read) counts towards the max.
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    rows = store.exchanges.list({ ...c.filter, limit: PAGE, before });
    times.push(performance.now() - t);
  }
  const problem = check(rows, expected);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const maxMs = Math.max(...times);
  return {
    query: c.name,
    filter: c.filter,
    page,
    before: before ?? null,
    matchingRows: c.matching.length,
    rows: rows.length,
    firstMs: round(times[0]!),
    medianMs: round(median(times)),
    maxMs: round(maxMs),
    pass: problem === null && maxMs < GOAL_MS,
    problem,
  };
}

function measureSessions(store: Store, sessions: string[]): Array<Omit<Measured, 'matchingRows' | 'filter'> & { filter: { agent?: string } }> {
  const out = [];
  for (const page of ['first', 'deep'] as const) {
    const before = page === 'deep' ? sessions[Math.floor(sessions.length / 2)] : undefined;
    const times: number[] = [];
    let n = 0;
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      n = store.sessions.list({ limit: PAGE, before }).length;
      times.push(performance.now() - t);
    }
    const maxMs = Math.max(...times);
    const want = Math.min(PAGE, before ? sessions.indexOf(before) : sessions.length);
    const problem = n === want ? null : `returned ${n} sessions, expected ${want}`;
    out.push({
      query: 'sessions (with exchange counts)', filter: {}, page, before: before ?? null, rows: n,
      firstMs: Math.round(times[0]! * 1000) / 1000, medianMs: Math.round(median(times) * 1000) / 1000, maxMs: Math.round(maxMs * 1000) / 1000,
      pass: problem === null && maxMs < GOAL_MS, problem,
    });
  }
  return out;
}

// ------------------------------------------------------------ run

function commit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

function fileBytes(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

const startedAt = new Date();
const dir = mkdtempSync(join(os.tmpdir(), 'airlock-bench-store-'));
const file = join(dir, 'airlock.db');
try {
  process.stderr.write(`recording ${ROWS.toLocaleString('en')} exchanges into ${file} …\n`);
  let store = openStore(file);
  const t0 = performance.now();
  const { tracked, sessions, sessionAgent } = record(store, ROWS, Date.parse('2026-11-24T00:00:00.000Z'));
  const recordMs = performance.now() - t0;
  store.close();
  const dbBytes = fileBytes(file) + fileBytes(`${file}-wal`);
  process.stderr.write(`recorded in ${(recordMs / 1000).toFixed(1)} s (${Math.round(ROWS / (recordMs / 1000)).toLocaleString('en')} rows/s), ` +
    `${(dbBytes / 1048576).toFixed(0)} MiB on disk, ${sessions.length} sessions; reopening and querying (${RUNS} runs each) …\n`);

  // A fresh connection, as `airlock exchanges` has.
  store = openStore(file);
  const all = [...tracked.agent.values()].flat().sort((a, b) => a - b);
  const pick = (m: Map<string, number[]>, key: string): Case['matching'] => m.get(key) ?? [];
  const sessionMid = sessions[Math.floor(sessions.length / 2)]!;
  const cases: Case[] = [
    { name: 'unfiltered', filter: {}, matching: all },
    { name: 'agent = claude', filter: { agent: 'claude' }, matching: pick(tracked.agent, 'claude') },
    { name: 'agent = aider (rare)', filter: { agent: 'aider' }, matching: pick(tracked.agent, 'aider') },
    { name: 'host = registry.npmjs.org', filter: { host: 'registry.npmjs.org' }, matching: pick(tracked.host, 'registry.npmjs.org') },
    { name: 'host = gitlab.example.com (rare)', filter: { host: 'gitlab.example.com' }, matching: pick(tracked.host, 'gitlab.example.com') },
    { name: 'kind = git-push', filter: { kind: 'git-push' }, matching: pick(tracked.kind, 'git-push') },
    { name: 'kind = http-api', filter: { kind: 'http-api' }, matching: pick(tracked.kind, 'http-api') },
    { name: 'verdict = deny', filter: { verdict: 'deny' }, matching: pick(tracked.verdict, 'deny') },
    { name: 'verdict = review', filter: { verdict: 'review' }, matching: pick(tracked.verdict, 'review') },
    { name: `session = ${sessionMid.slice(0, 8)}…`, filter: { sessionId: sessionMid }, matching: pick(tracked.sessionId, sessionMid) },
  ];
  // Beyond the goal: two filters at once (one index serves one of them; the other is checked row by row).
  const aider = new Set(pick(tracked.agent, 'aider'));
  const combined: Case = {
    name: 'agent = aider AND kind = git-push', filter: { agent: 'aider', kind: 'git-push' },
    matching: pick(tracked.kind, 'git-push').filter((id) => aider.has(id)),
  };

  // The worst kind of combination: two broad filters that never match together (the chosen index's rows are all read).
  const codexSession = sessions.find((id) => sessionAgent.get(id) === 'codex' && tracked.sessionId.has(id))!;
  const disjoint: Case = { name: 'agent = claude AND a codex session', filter: { agent: 'claude', sessionId: codexSession }, matching: [] };

  const results: Measured[] = [];
  for (const c of cases) for (const page of ['first', 'deep'] as const) results.push(measure(store, c, page));
  const extra: Array<Measured | ReturnType<typeof measureSessions>[number]> = [];
  for (const page of ['first', 'deep'] as const) extra.push(measure(store, combined, page));
  extra.push(measure(store, disjoint, 'first'));
  extra.push(...measureSessions(store, sessions));
  store.close();

  // ---------------------------------------------------------- report
  const header = ['query', 'page', 'matching', 'rows', 'first ms', 'median ms', 'max ms', `goal (max < ${GOAL_MS} ms)`];
  const fmt = (r: Measured | ReturnType<typeof measureSessions>[number]) => [
    r.query, r.page, 'matchingRows' in r ? String(r.matchingRows) : '-', String(r.rows),
    r.firstMs.toFixed(2), r.medianMs.toFixed(2), r.maxMs.toFixed(2), r.problem ? `FAIL ${r.problem}` : r.pass ? 'PASS' : 'MISS',
  ];
  const body = results.map(fmt);
  const extraBody = extra.map(fmt);
  const widths = header.map((h, i) => Math.max(h.length, ...[...body, ...extraBody].map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-|-');
  const passed = results.filter((r) => r.pass).length;
  const out: string[] = [];
  out.push('');
  out.push(`Airlock store query bench - ${ROWS.toLocaleString('en')} exchanges (1 KiB response bodies), page of ${PAGE}, ${RUNS} runs per query; ` +
    `${os.cpus().length} cpus, node ${process.versions.node}`);
  out.push(`recorded in ${(recordMs / 1000).toFixed(1)} s (${Math.round(ROWS / (recordMs / 1000)).toLocaleString('en')} rows/s through the store API), ` +
    `${(dbBytes / 1048576).toFixed(0)} MiB on disk, ${sessions.length} sessions; queries on a fresh connection`);
  out.push('');
  out.push(line(header));
  out.push(rule);
  for (const r of body) out.push(line(r));
  out.push('');
  out.push('beyond the goal (not counted): two filters combined, and the session list');
  for (const r of extraBody) out.push(line(r));
  out.push('');
  out.push(`goal: a page of ${PAGE} from ${ROWS.toLocaleString('en')} recorded exchanges in under ${GOAL_MS} ms (every run): ` +
    `${passed}/${results.length} queries PASS${passed === results.length ? '' : ' (see MISS/FAIL above)'}`);
  out.push(`deep page: before = the middle matching row. first ms = the first run (prepares the statement). 1-minute load average: ${os.loadavg()[0]!.toFixed(2)}`);

  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = join(resultsDir, `store-query-${startedAt.toISOString().replace(/:/g, '-')}.json`);
  writeFileSync(jsonFile, JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, node: process.versions.node, platform: `${os.platform()} ${os.release()}`, commit: commit(), loadAverage: os.loadavg() },
    config: { rows: ROWS, runs: RUNS, page: PAGE, goalMs: GOAL_MS, responseBodyBytes: BODY.length, concurrentSessions: CONCURRENT_SESSIONS, sessionLength: SESSION_LENGTH },
    recording: { ms: Math.round(recordMs), rowsPerSecond: Math.round(ROWS / (recordMs / 1000)), dbBytes, sessions: sessions.length },
    results,
    extra,
    goal: { passed, total: results.length },
  }, null, 2) + '\n');
  out.push(`results: ${jsonFile}`);
  console.log(out.join('\n'));
  process.exitCode = results.some((r) => r.problem) || extra.some((r) => r.problem) ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
