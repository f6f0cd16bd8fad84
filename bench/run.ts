// `npm run bench`: direct vs through Airlock vs through mitmdump, in one run.
// See bench/README.md for what each number means.
//
//   npm run bench                               full run (~4.5 minutes)
//   npm run bench -- --quick                    short smoke run (not comparable numbers)
//   npm run bench -- --targets=direct,mitmproxy only some columns
//   npm run bench -- --no-reference              without the four reference proxies (bench/reference-proxy.ts)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import {
  directFactory,
  firstRequestPhase,
  summarizeSamples,
  latencyPhase,
  pacedPhase,
  percentiles,
  proxyFactory,
  takeClientConnections,
  throughputPhase,
  type CpuProbes,
  type DispatcherFactory,
  type FirstRequestResult,
  type LatencyResult,
  type ThroughputResult,
} from './load';
import { makeBenchPki, upstreamIps } from './pki';
import {
  REPO_ROOT,
  findMitmdump,
  log,
  cpuSecondsOf,
  cpuMillisPreciseOf,
  memoryOf,
  mitmdumpVersion,
  sleep,
  startAirlock,
  startMitmdump,
  type ReferenceMode,
  startReferenceProxy,
  startUpstream,
  type ProxyProcess,
  type Upstream,
  type UpstreamStats,
} from './procs';

type TargetName = 'direct' | 'airlock' | 'mitmproxy';
/**
 * Reference lanes, throughput rounds only, never judged: what a TLS-intercepting proxy in Node reaches on
 * this machine today (bench/reference-proxy.ts). `--no-reference` leaves them out.
 */
type ReferenceName = 'ref: tls pipe' | 'ref: node:http+undici' | 'ref: raw head+undici' | 'ref: raw both sides';
const REFERENCES: { name: ReferenceName; mode: ReferenceMode; what: string }[] = [
  { name: 'ref: tls pipe', mode: 'tls-pipe', what: 'a TLS pipe without HTTP (the floor)' },
  { name: 'ref: node:http+undici', mode: 'http-undici', what: 'a bare node:http + undici MITM (Airlock\'s two HTTP stacks, nothing else)' },
  { name: 'ref: raw head+undici', mode: 'raw-undici', what: 'request and response heads read and written on the TLS socket by hand, undici upstream (no node:http server side)' },
  { name: 'ref: raw both sides', mode: 'raw-raw', what: 'HTTP/1.1 read and written by hand on both TLS sockets, no HTTP library (content-length framing only)' },
];
const ALL_TARGETS: TargetName[] = ['direct', 'airlock', 'mitmproxy'];
/** 127.0.0.1 for latency and throughput, then one new IP per first-request sample in each of the two passes. */
const ipCount = (samples: number): number => 1 + 2 * samples;

// ------------------------------------------------------------ options

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const withReference = !argv.includes('--no-reference');
const targetsArg = argv.find((a) => a.startsWith('--targets='));
const targets: TargetName[] = targetsArg
  ? (targetsArg.slice('--targets='.length).split(',').filter(Boolean) as TargetName[])
  : ALL_TARGETS;
for (const t of targets) {
  if (!ALL_TARGETS.includes(t)) {
    console.error(`unknown target '${t}' (known: ${ALL_TARGETS.join(', ')})`);
    process.exit(2);
  }
}
for (const a of argv) {
  if (a !== '--quick' && a !== '--no-reference' && !a.startsWith('--targets=')) {
    console.error(`unknown option '${a}' (known: --quick, --no-reference, --targets=direct,airlock,mitmproxy)`);
    process.exit(2);
  }
}

const config = quick
  ? { latencyWarmup: 50, latencyCount: 300, connections: 16, throughputRounds: 1, throughputWarmupMs: 500, throughputMeasureMs: 2000, firstRequestSamples: 8, pacedPerSecond: 2000, pacedRounds: 1, pacedWarmupMs: 500, pacedMeasureMs: 2000, quick }
  : { latencyWarmup: 200, latencyCount: 2000, connections: 16, throughputRounds: 5, throughputWarmupMs: 1500, throughputMeasureMs: 4000, firstRequestSamples: 30, pacedPerSecond: 2000, pacedRounds: 2, pacedWarmupMs: 1000, pacedMeasureMs: 5000, quick };

const GOALS = {
  throughputVsMitmproxyMin: 3.5,
  throughputVsDirectMin: 0.35,
  p50VsMitmproxyMax: 0.7,
  firstRequestVsDirectMax: 2,
  rssAfterMaxMB: 150,
};

// ------------------------------------------------------------ results

interface KeepAliveCheck {
  clientTlsConnections: number;
  clientConnectionsToProxy: number;
  upstream: UpstreamStats;
  expectedClientConnections: number;
  ok: boolean;
}

interface Memory {
  peakRssBytes: number;
  rssBytes: number;
}

interface PacedSummary {
  perSecond: number;
  connections: number;
  rounds: number;
  completed200: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU microseconds per completed request over all rounds, per process. */
  cpuMicrosPerRequest: Record<string, number>;
}

type FirstRequestSummary = FirstRequestResult & { upstream: UpstreamStats; cpuMsPerRequest?: Record<string, number> };

interface TargetResult {
  /** os.loadavg() [1, 5, 15 min] when the target started and when it finished: other work on the machine skews numbers. */
  loadAverage?: { start: number[]; end: number[] };
  status: 'ok' | 'failed' | 'not installed' | 'skipped';
  error?: string;
  latency?: LatencyResult & { keepAlive: KeepAliveCheck };
  /** The median of the throughput rounds (by req/s), with every round's req/s. */
  throughput?: ThroughputResult & { keepAlive: KeepAliveCheck; rounds: number[] };
  /**
   * `cpuMsPerRequest`: median CPU milliseconds each process used while one first request ran (from its start
   * to its response): the load generator (this process), the upstream, and the proxy (all its threads).
   */
  firstRequest?: FirstRequestSummary;
  /** The same measurement right after the proxy started (its first connections, before any throughput round). */
  firstRequestAtStart?: FirstRequestSummary;
  /** Not judged: a fixed rate below saturation (`config.pacedPerSecond`), rounds pooled. */
  paced?: PacedSummary;
  memory?: Memory;
  process?: { pid: number; proxyUrl: string };
}

async function keepAliveCheck(upstream: Upstream, expected: number, what: string, name: string): Promise<KeepAliveCheck> {
  const c = takeClientConnections();
  const up = await upstream.stats(true);
  const ok = c.https === expected;
  log(
    `  keep-alive check (${name} ${what}): client opened ${c.https} TLS connection(s) to the origin` +
      (name === 'direct' ? '' : ` via ${c.toProxy} connection(s) to the proxy`) +
      `, upstream accepted ${up.connections} for ${up.requests} requests` +
      (ok ? ' - OK' : ` - WARNING: expected ${expected}`),
  );
  return { clientTlsConnections: c.https, clientConnectionsToProxy: c.toProxy, upstream: up, expectedClientConnections: expected, ok };
}

/** One column of the table: how to reach the upstream, and the process behind it (none for direct). */
interface Lane {
  name: TargetName | 'airlock-norecord' | ReferenceName;
  make: DispatcherFactory;
  proxy?: ProxyProcess;
  result: TargetResult;
  rounds: (ThroughputResult & { keepAlive: KeepAliveCheck })[];
}

function fail(lane: Lane, e: unknown): void {
  lane.result.status = 'failed';
  lane.result.error ??= `${lane.name}: ${(e as Error).message}`;
  log(`${lane.name}: FAILED - ${lane.result.error}`);
}

/** Latency phase of one lane; a phase that cannot run ends the lane (status 'failed'). */
async function measureLatency(lane: Lane, upstream: Upstream): Promise<void> {
  const { name, make, result } = lane;
  const origin = `https://127.0.0.1:${upstream.port}`;
  try {
    takeClientConnections();
    await upstream.stats(true);

    log(`${name}: latency, ${config.latencyWarmup} warm-up + ${config.latencyCount} sequential GETs on one connection`);
    const lat = await latencyPhase(make, origin, config.latencyWarmup, config.latencyCount);
    const latKA = await keepAliveCheck(upstream, 1, 'latency', name);
    log(`  p50 ${lat.p50Ms.toFixed(3)} ms, p99 ${lat.p99Ms.toFixed(3)} ms, errors ${lat.errors}`);
    result.latency = { ...lat, keepAlive: latKA };
    if (lat.samples === 0) throw new Error('latency phase: no successful request');
  } catch (e) {
    fail(lane, e);
  }
}

/**
 * First request to a new host, sample by sample in turn across the lanes (the pass's first IP for every
 * lane, then its next, …), so that drift on this shared machine lands on every column alike. Each sample
 * is a fresh client (no pooling, no TLS session cache); the upstream counts its connections per sample.
 * Two passes with different IPs: `atStart` right after the latency phase (each proxy's first
 * connections: mostly V8 compiling Node's net/tls/http paths for the first time), and the judged one
 * after the throughput rounds, a proxy that has served traffic, as a gateway that has been running does.
 */
async function measureFirstRequests(lanes: Lane[], upstream: Upstream, pass: 'atStart' | 'afterTraffic'): Promise<void> {
  const n = config.firstRequestSamples;
  const from = pass === 'atStart' ? 1 : 1 + n;
  const ips = upstreamIps(ipCount(n)).slice(from, from + n);
  const origins = ips.map((ip) => `https://${ip}:${upstream.port}`);
  const what = pass === 'atStart' ? 'right after start' : 'after the throughput rounds';
  log(`first request to a new host, ${what}: ${origins.length} samples per lane (${ips[0]} … ${ips[ips.length - 1]}), lanes in turn`);
  const acc = new Map<Lane, { samples: number[]; errors: number; up: UpstreamStats; cpu: Record<string, number[]> }>();
  for (const lane of lanes) acc.set(lane, { samples: [], errors: 0, up: { connections: 0, requests: 0, byIp: {} }, cpu: {} });
  // CPU used by each process during each sample (where a first request's time goes on a 2-core machine).
  // The load generator is read closest to the sample, so that reading /proc is not counted in it.
  const selfCpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const procCpu = (lane: Lane): Record<string, number | null> => {
    const c: Record<string, number | null> = { upstream: cpuMillisPreciseOf(upstream.pid) };
    if (lane.proxy) c[lane.name] = cpuMillisPreciseOf(lane.proxy.pid);
    return c;
  };
  await upstream.stats(true);
  for (const origin of origins) {
    for (const lane of lanes) {
      if (lane.result.status !== 'ok') continue;
      const a = acc.get(lane)!;
      try {
        const procs0 = procCpu(lane);
        const self0 = selfCpu();
        const one = await firstRequestPhase(lane.make, [origin]);
        const self1 = selfCpu();
        const procs1 = procCpu(lane);
        if (one.samplesMs.length > 0) {
          (a.cpu['load generator'] ??= []).push(self1 - self0);
          for (const [k, v] of Object.entries(procs1)) {
            const b = procs0[k];
            if (v !== null && b !== null && b !== undefined) (a.cpu[k] ??= []).push(v - b);
          }
        }
        a.samples.push(...one.samplesMs);
        a.errors += one.errors;
        if (a.errors > 5) throw new Error('first-request phase: more than 5 failed requests');
      } catch (e) {
        fail(lane, e);
      }
      const up = await upstream.stats(true);
      a.up.connections += up.connections;
      a.up.requests += up.requests;
      for (const [ip, n] of Object.entries(up.byIp)) a.up.byIp[ip] = (a.up.byIp[ip] ?? 0) + n;
    }
  }
  takeClientConnections();
  for (const lane of lanes) {
    if (lane.result.status !== 'ok') continue;
    const a = acc.get(lane)!;
    const first = summarizeSamples(a.samples, a.errors);
    const cpuMsPerRequest: Record<string, number> = {};
    for (const [k, v] of Object.entries(a.cpu)) if (v.length > 0) cpuMsPerRequest[k] = Math.round(summarizeSamples(v, 0).medianMs * 1000) / 1000;
    log(`  ${lane.name} (${what}): median ${first.medianMs.toFixed(3)} ms (min ${first.minMs.toFixed(3)}, max ${first.maxMs.toFixed(3)}), errors ${first.errors}, upstream connections ${a.up.connections} for ${a.up.requests} requests` +
      (Object.keys(cpuMsPerRequest).length ? `; CPU per request: ${cpuText(cpuMsPerRequest)}` : ''));
    lane.result[pass === 'atStart' ? 'firstRequestAtStart' : 'firstRequest'] = { ...first, upstream: a.up, cpuMsPerRequest };
    if (first.samples === 0) fail(lane, new Error('first-request phase: no successful request'));
  }
}

function cpuText(cpu: Record<string, number>): string {
  return Object.entries(cpu).map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ');
}

/** CPU seconds so far of the load generator (this process), the upstream and the lane's proxy, if it has one. */
function laneProbes(lane: Lane, upstream: Upstream): CpuProbes {
  const probes: CpuProbes = {
    'load generator': () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
    upstream: () => cpuSecondsOf(upstream.pid),
  };
  const pid = lane.proxy?.pid;
  if (pid) probes[lane.name] = () => cpuSecondsOf(pid);
  return probes;
}

/** One throughput round of one lane (rounds alternate between lanes, so drift on a shared machine hits all alike). */
async function throughputRound(lane: Lane, upstream: Upstream, round: number): Promise<void> {
  const { name, make } = lane;
  const origin = `https://127.0.0.1:${upstream.port}`;
  try {
    takeClientConnections();
    await upstream.stats(true);
    const probes = laneProbes(lane, upstream);
    log(`${name}: throughput round ${round}/${config.throughputRounds}, ${config.connections} connections, ${config.throughputWarmupMs / 1000} s warm-up + ${config.throughputMeasureMs / 1000} s`);
    const tp = await throughputPhase(make, origin, config.connections, config.throughputWarmupMs, config.throughputMeasureMs, probes);
    const ka = await keepAliveCheck(upstream, config.connections, 'throughput', name);
    const cpu = Object.entries(tp.cpuMicrosPerRequest ?? {});
    log(`  ${tp.requestsPerSecond.toFixed(0)} req/s, errors ${tp.errors}${cpu.length ? `; CPU per request: ${cpu.map(([k, v]) => `${k} ${v.toFixed(0)} µs`).join(', ')}` : ''}`);
    if (tp.completed200 === 0) throw new Error(`throughput phase: no successful request (${tp.errors} failed)`);
    lane.rounds.push({ ...tp, keepAlive: ka });
  } catch (e) {
    fail(lane, e);
  }
}

/**
 * Not judged: each lane at the same fixed rate, well below what Airlock serves at saturation, in rounds that
 * alternate forward and backward between the lanes. It answers what recording costs a request and the
 * gateway's CPU when the machine is not saturated (the throughput rounds answer it when it is).
 */
async function measurePaced(lanes: Lane[], upstream: Upstream): Promise<void> {
  const origin = `https://127.0.0.1:${upstream.port}`;
  const acc = new Map<Lane, { samples: number[]; completed: number; errors: number; cpu: Record<string, number> }>();
  for (let round = 1; round <= config.pacedRounds; round++) {
    const order = round % 2 === 1 ? lanes : [...lanes].reverse();
    for (const lane of order) {
      if (lane.result.status !== 'ok') continue;
      const probes = laneProbes(lane, upstream);
      log(`${lane.name}: steady load round ${round}/${config.pacedRounds}, ${config.pacedPerSecond} req/s on ${config.connections} connections, ${config.pacedWarmupMs / 1000} s warm-up + ${config.pacedMeasureMs / 1000} s`);
      try {
        const r = await pacedPhase(lane.make, origin, config.connections, config.pacedPerSecond, config.pacedWarmupMs, config.pacedMeasureMs, probes);
        const a = acc.get(lane) ?? { samples: [], completed: 0, errors: 0, cpu: {} };
        acc.set(lane, a);
        a.samples.push(...r.samplesMs);
        a.completed += r.completed200;
        a.errors += r.errors;
        for (const [k, v] of Object.entries(r.cpuSeconds)) a.cpu[k] = (a.cpu[k] ?? 0) + v;
        const p = percentiles(r.samplesMs);
        log(`  ${r.completed200} requests, errors ${r.errors}, p50 ${p.p50Ms.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms`);
      } catch (e) {
        log(`  ${lane.name}: steady load failed (not judged): ${(e as Error).message}`);
      }
    }
  }
  for (const [lane, a] of acc) {
    if (a.completed === 0) continue;
    const cpuMicrosPerRequest = Object.fromEntries(Object.entries(a.cpu).map(([k, v]) => [k, (v * 1e6) / a.completed]));
    lane.result.paced = {
      perSecond: config.pacedPerSecond, connections: config.connections, rounds: config.pacedRounds,
      completed200: a.completed, errors: a.errors, ...percentiles(a.samples), cpuMicrosPerRequest,
    };
  }
  takeClientConnections();
}

/** The median round by req/s (odd count: the middle one; even: the lower middle). */
function medianRound(lane: Lane): TargetResult['throughput'] {
  if (lane.rounds.length === 0) return undefined;
  const sorted = [...lane.rounds].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...mid, rounds: lane.rounds.map((r) => r.requestsPerSecond) };
}

async function startLane(name: Lane['name'], start: () => Promise<ProxyProcess>): Promise<Lane> {
  log(`${name}: starting`);
  try {
    const proxy = await start();
    log(`${name}: listening at ${proxy.proxyUrl} (pid ${proxy.pid})`);
    return { name, proxy, make: proxyFactory(proxy.proxyUrl, proxy.caPem, proxy.proxyAuthorization), result: { status: 'ok', process: { pid: proxy.pid, proxyUrl: proxy.proxyUrl } }, rounds: [] };
  } catch (e) {
    const error = `${name} could not start: ${(e as Error).message}`;
    log(`${name}: FAILED - ${error}`);
    return { name, make: () => { throw new Error(error); }, result: { status: 'failed', error }, rounds: [] };
  }
}

// ------------------------------------------------------------ table

const mb = (b: number): string => (b / (1024 * 1024)).toFixed(1);

type Row = {
  metric: string;
  pick: (r: TargetResult) => number | undefined;
  fmt: (n: number) => string;
  goal: (air?: number, mitm?: number, direct?: number) => { text: string; status: 'PASS' | 'MISS' | 'n/a' }[];
};

function judge(text: string, ratio: number | undefined, ok: (x: number) => boolean): { text: string; status: 'PASS' | 'MISS' | 'n/a' } {
  if (ratio === undefined || !Number.isFinite(ratio)) return { text, status: 'n/a' };
  return { text, status: ok(ratio) ? 'PASS' : 'MISS' };
}
const div = (a?: number, b?: number): number | undefined =>
  a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? undefined : a / b;

const ROWS: Row[] = [
  {
    metric: 'latency p50 (ms, 1 conn, sequential)',
    pick: (r) => r.latency?.p50Ms,
    fmt: (n) => n.toFixed(3),
    goal: (a, m) => [judge(`<= ${GOALS.p50VsMitmproxyMax}x mitmproxy`, div(a, m), (x) => x <= GOALS.p50VsMitmproxyMax)],
  },
  { metric: 'latency p99 (ms, 1 conn, sequential)', pick: (r) => r.latency?.p99Ms, fmt: (n) => n.toFixed(3), goal: () => [] },
  {
    metric: `throughput (req/s, ${config.connections} conns)`,
    pick: (r) => r.throughput?.requestsPerSecond,
    fmt: (n) => n.toFixed(0),
    goal: (a, m, d) => [
      judge(`>= ${GOALS.throughputVsMitmproxyMin}x mitmproxy`, div(a, m), (x) => x >= GOALS.throughputVsMitmproxyMin),
      judge(`>= ${GOALS.throughputVsDirectMin}x direct`, div(a, d), (x) => x >= GOALS.throughputVsDirectMin),
    ],
  },
  {
    metric: 'first request to new host (ms, median)',
    pick: (r) => r.firstRequest?.medianMs,
    fmt: (n) => n.toFixed(3),
    goal: (a, _m, d) => [judge(`<= ${GOALS.firstRequestVsDirectMax}x direct`, div(a, d), (x) => x <= GOALS.firstRequestVsDirectMax)],
  },
  // Not judged: a proxy's first connections after it starts, V8 compiling the connection paths (README "Performance").
  { metric: '  same, proxy just started (ms, median)', pick: (r) => r.firstRequestAtStart?.medianMs, fmt: (n) => n.toFixed(3), goal: () => [] },
  { metric: 'proxy peak RSS (MB, VmHWM)', pick: (r) => (r.memory ? r.memory.peakRssBytes / 2 ** 20 : undefined), fmt: (n) => n.toFixed(1), goal: () => [] },
  {
    metric: 'proxy RSS after run (MB, VmRSS)',
    pick: (r) => (r.memory ? r.memory.rssBytes / 2 ** 20 : undefined),
    fmt: (n) => n.toFixed(1),
    goal: (a) => [judge(`airlock < ${GOALS.rssAfterMaxMB} MB`, a, (x) => x < GOALS.rssAfterMaxMB)],
  },
];

function cell(r: TargetResult | undefined, row: Row): string {
  if (!r) return 'skipped';
  if (r.status === 'not installed') return 'not installed';
  if (r.status === 'skipped') return 'skipped';
  const v = row.pick(r);
  if (v === undefined || !Number.isFinite(v)) return r.status === 'failed' ? 'failed' : '-';
  // a failed target's partial numbers are shown with '*' and left out of ratios and goals
  return r.status === 'failed' ? `${row.fmt(v)}*` : row.fmt(v);
}

function buildTable(results: Partial<Record<TargetName, TargetResult>>): {
  text: string;
  rows: Record<string, unknown>[];
  goals: { metric: string; goal: string; ratio?: number; status: string }[];
} {
  const header = ['metric', 'direct', 'airlock', 'mitmproxy', 'airlock/mitmproxy', 'airlock/direct', 'goals'];
  const lines: string[][] = [header];
  const jsonRows: Record<string, unknown>[] = [];
  const goals: { metric: string; goal: string; ratio?: number; status: string }[] = [];
  const val = (t: TargetName, row: Row): number | undefined => {
    const r = results[t];
    if (!r || !(r.status === 'ok')) return undefined;
    const v = row.pick(r);
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  };
  for (const row of ROWS) {
    const a = val('airlock', row);
    const m = val('mitmproxy', row);
    const d = val('direct', row);
    const rm = div(a, m);
    const rd = div(a, d);
    const gs = row.goal(a, m, d);
    for (const g of gs) {
      const ratio = g.text.includes('mitmproxy') ? rm : g.text.includes('direct') ? rd : a;
      goals.push({ metric: row.metric, goal: g.text, ratio, status: g.status });
    }
    lines.push([
      row.metric,
      cell(results.direct, row),
      cell(results.airlock, row),
      cell(results.mitmproxy, row),
      rm === undefined ? '-' : `${rm.toFixed(2)}x`,
      rd === undefined ? '-' : `${rd.toFixed(2)}x`,
      gs.map((g) => `${g.status} ${g.text}`).join('; '),
    ]);
    jsonRows.push({ metric: row.metric, direct: d ?? null, airlock: a ?? null, mitmproxy: m ?? null, airlockVsMitmproxy: rm ?? null, airlockVsDirect: rd ?? null });
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmtLine = (l: string[]): string =>
    l.map((c, i) => (i === 0 || i === l.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('-+-');
  const text = [fmtLine(lines[0]!), sep, ...lines.slice(1).map(fmtLine)].join('\n');
  return { text, rows: jsonRows, goals };
}

// ------------------------------------------------------------ main

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const tmp = mkdtempSync(join(os.tmpdir(), 'airlock-bench-'));
  const results: Partial<Record<TargetName, TargetResult>> = {};
  const mitmBin = findMitmdump();
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    undici: (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/undici/package.json'), 'utf8')) as { version: string }).version,
    mitmdump: mitmBin ? await mitmdumpVersion(mitmBin) : 'not installed',
    mitmdumpPath: mitmBin,
    airlockCommit: gitCommit(),
  };
  log(`machine: ${machine.cpus} cpus (${machine.cpuModel}), node ${machine.node}, mitmdump ${machine.mitmdump}`);
  if (quick) log('--quick: short phases; numbers are NOT comparable to a full run');

  let upstream: Upstream | undefined;
  let fatal: string | undefined;
  let airlockNoRecord: TargetResult | undefined;
  const reference: Partial<Record<ReferenceName, TargetResult>> = {};
  try {
    const ips = upstreamIps(ipCount(config.firstRequestSamples));
    const pki = makeBenchPki(tmp, ips);
    upstream = await startUpstream(pki.certPath, pki.keyPath, ips.length);
    log(`upstream: pid ${upstream.pid}, HTTPS on ${ips[0]} … ${ips[ips.length - 1]} port ${upstream.port}`);

    // Every process starts first; the phases then run lane by lane, and the throughput rounds alternate
    // between lanes, so a slow minute on this shared machine does not land on one column only.
    const lanes: Lane[] = [];
    for (const t of ALL_TARGETS) {
      if (!targets.includes(t)) {
        results[t] = { status: 'skipped' };
        continue;
      }
      if (t === 'direct') {
        lanes.push({ name: 'direct', make: directFactory(pki.caPem), result: { status: 'ok' }, rounds: [] });
      } else if (t === 'airlock') {
        const dataDir = join(tmp, 'airlock-data');
        mkdirSync(dataDir, { recursive: true });
        // BENCH_AIRLOCK_CONFIG: extra config.yaml lines for both Airlock runs (A/B of options).
        const extra = process.env.BENCH_AIRLOCK_CONFIG ? `${process.env.BENCH_AIRLOCK_CONFIG}\n` : '';
        if (extra) writeFileSync(join(dataDir, 'config.yaml'), extra);
        lanes.push(await startLane('airlock', () => startAirlock(dataDir, pki.caPath)));
        // Issue 5: recording every exchange must cost < 10% of throughput. Same run, recording off.
        const offDir = join(tmp, 'airlock-data-norecord');
        mkdirSync(offDir, { recursive: true });
        writeFileSync(join(offDir, 'config.yaml'), `${extra}record: false\n`);
        lanes.push(await startLane('airlock-norecord', () => startAirlock(offDir, pki.caPath)));
      } else if (!mitmBin) {
        results.mitmproxy = { status: 'not installed' };
        log('mitmproxy: mitmdump not installed, skipping');
      } else {
        const confDir = join(tmp, 'mitmproxy');
        mkdirSync(confDir, { recursive: true });
        lanes.push(await startLane('mitmproxy', () => startMitmdump(mitmBin, confDir, pki.caPath)));
      }
    }
    if (withReference && targets.includes('direct')) {
      for (const r of REFERENCES) lanes.push(await startLane(r.name, () => startReferenceProxy(r.mode, pki)));
    }
    const isReference = (l: Lane): boolean => REFERENCES.some((r) => r.name === l.name);
    try {
      const ok = () => lanes.filter((l) => l.result.status === 'ok');
      const judged = () => ok().filter((l) => !isReference(l));
      for (const lane of judged()) {
        const loadStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
        if (loadStart[0]! > machine.cpus * 0.75) {
          log(`${lane.name}: note: 1-minute load average is ${loadStart[0]} on ${machine.cpus} cpus; other work may skew the numbers`);
        }
        lane.result.loadAverage = { start: loadStart, end: loadStart };
        await measureLatency(lane, upstream);
      }
      await measureFirstRequests(judged(), upstream, 'atStart');
      // Forward in odd rounds, backward in even ones (A B C, C B A, …): no lane always runs right after
      // the same neighbour (whose after-effects, an idle-time GC or a checkpoint, would land on it alone).
      for (let round = 1; round <= config.throughputRounds; round++) {
        const order = round % 2 === 1 ? ok() : ok().reverse();
        for (const lane of order) await throughputRound(lane, upstream, round);
      }
      await measureFirstRequests(judged(), upstream, 'afterTraffic');
      // mitmproxy serves ~1 000 req/s here, below the steady rate: it would only fall behind.
      await measurePaced(judged().filter((l) => l.name !== 'mitmproxy'), upstream);
      for (const lane of lanes) {
        lane.result.throughput = medianRound(lane);
        if (lane.result.loadAverage) lane.result.loadAverage.end = os.loadavg().map((x) => Math.round(x * 100) / 100);
        if (!lane.proxy) continue;
        await sleep(lane === lanes.find((l) => l.proxy) ? 1000 : 0); // let in-flight closes settle before reading RSS
        const mem = memoryOf(lane.proxy.pid);
        if (mem) {
          lane.result.memory = mem;
          log(`  ${lane.name} peak RSS ${mb(mem.peakRssBytes)} MB, RSS after the run ${mb(mem.rssBytes)} MB`);
        } else log(`  WARNING: could not read /proc/${lane.proxy.pid}/status`);
      }
    } finally {
      for (const lane of lanes) await lane.proxy?.stop().catch(() => undefined);
    }
    for (const lane of lanes) {
      if (lane.name === 'airlock-norecord') airlockNoRecord = lane.result;
      else if (isReference(lane)) reference[lane.name as ReferenceName] = lane.result;
      else results[lane.name as TargetName] = lane.result;
    }
  } catch (e) {
    fatal = (e as Error).stack ?? String(e);
    log(`FATAL: ${fatal}`);
  } finally {
    await upstream?.stop().catch(() => undefined);
  }

  const table = buildTable(results);
  // Not judged: each round's ratio of two lanes measured back to back in that round. A phase change of
  // this VM between rounds can set two lanes' medians in different phases; a paired ratio does not.
  const perRound = (a?: number[], b?: number[]): { rounds: number[]; median: number } | null => {
    if (!a || !b || a.length !== b.length || a.length < 2) return null;
    const rounds = a.map((x, i) => x / b[i]!);
    return { rounds, median: [...rounds].sort((x, y) => x - y)[rounds.length >> 1]! };
  };
  const pairedRatios = {
    airlockVsDirect: perRound(results.airlock?.throughput?.rounds, results.direct?.throughput?.rounds),
    recordingOnVsOff: perRound(results.airlock?.throughput?.rounds, airlockNoRecord?.throughput?.rounds),
  };
  const finishedAt = new Date();
  const out = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    machine,
    config,
    goals: GOALS,
    table: table.rows,
    goalResults: table.goals,
    results,
    airlockRecordingOff: airlockNoRecord ?? null,
    reference,
    pairedRatios,
    fatal: fatal ?? null,
  };
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${startedAt.toISOString().replace(/:/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');

  const lines: string[] = [];
  lines.push('');
  lines.push(
    `Airlock bench${quick ? ' (--quick)' : ''} - ${machine.cpus} cpus, node ${machine.node}, mitmdump ${machine.mitmdump.split(';')[0]}`,
  );
  lines.push('');
  lines.push(table.text);
  const on = results.airlock?.throughput?.requestsPerSecond;
  const off = airlockNoRecord?.throughput?.requestsPerSecond;
  if (on && off) {
    const r = on / off;
    lines.push('');
    lines.push(`recording cost: throughput with recording ${Math.round(on)} req/s, without ${Math.round(off)} req/s: ${r.toFixed(2)}x ` +
      `(${r >= 0.9 ? 'PASS' : 'MISS'} >= 0.90x, i.e. within 10%)`);
    const rounds = airlockNoRecord?.throughput?.rounds;
    if (rounds && rounds.length > 1) lines.push(`airlock, recording off: throughput rounds ${rounds.map((x) => x.toFixed(0)).join(', ')} req/s (median used)`);
  }
  const paired = ([name, p]: [string, { rounds: number[]; median: number } | null]) =>
    p ? `${name} ${p.rounds.map((x) => x.toFixed(2)).join(', ')} (median ${p.median.toFixed(2)})` : null;
  const pairedText = [paired(['airlock/direct', pairedRatios.airlockVsDirect]), paired(['recording on/off', pairedRatios.recordingOnVsOff])].filter(Boolean);
  if (pairedText.length) lines.push(`per-round ratios (lanes measured back to back in each round; not judged): ${pairedText.join('; ')}`);
  const pacedOn = results.airlock?.paced;
  const pacedOff = airlockNoRecord?.paced;
  const pacedDirect = results.direct?.paced;
  if (pacedOn || pacedOff) {
    const lat = (name: string, p?: PacedSummary): string | null => (p ? `${name} ${p.p50Ms.toFixed(3)}/${p.p99Ms.toFixed(3)} ms` : null);
    const p = pacedOn ?? pacedOff!;
    lines.push(`steady load, not judged: ${p.perSecond} req/s on ${p.connections} connections, ${p.rounds} round(s) of ${config.pacedMeasureMs / 1000} s per lane; ` +
      `latency p50/p99: ${[lat('direct', pacedDirect), lat('airlock', pacedOn), lat('recording off', pacedOff)].filter(Boolean).join(', ')}`);
    const cOn = pacedOn?.cpuMicrosPerRequest.airlock;
    const cOff = pacedOff?.cpuMicrosPerRequest['airlock-norecord'];
    if (cOn !== undefined && cOff !== undefined) {
      lines.push(`  Airlock's CPU per request at that rate (all its threads): with recording ${cOn.toFixed(0)} µs, without ${cOff.toFixed(0)} µs ` +
        `(recording ${cOn >= cOff ? '+' : ''}${(cOn - cOff).toFixed(0)} µs; without/with ${(cOff / cOn).toFixed(2)}x)`);
    }
  }
  const direct = results.direct?.throughput?.requestsPerSecond;
  const refLines = REFERENCES.flatMap((r) => {
    const x = reference[r.name];
    if (!x) return [];
    const tp = x.throughput;
    if (x.status !== 'ok' || !tp) return [`  ${r.what}: ${x.status}${x.error ? ` (${x.error})` : ''}`];
    const cpu = tp.cpuMicrosPerRequest?.[r.name];
    return [`  ${r.what}: ${Math.round(tp.requestsPerSecond)} req/s` + (direct ? `, ${(tp.requestsPerSecond / direct).toFixed(2)}x direct` : '') + (cpu !== undefined ? `, its CPU ${cpu.toFixed(0)} µs per request` : '')];
  });
  const airCpu = results.airlock?.throughput?.cpuMicrosPerRequest?.airlock;
  const offTp = airlockNoRecord?.throughput;
  if (refLines.length) {
    lines.push('reference, same run, throughput only, not judged (what a proxy written in Node reaches on this machine today):');
    lines.push(...refLines);
    if (offTp && direct) lines.push(`  Airlock with recording off: ${(offTp.requestsPerSecond / direct).toFixed(2)}x direct` + (offTp.cpuMicrosPerRequest?.['airlock-norecord'] !== undefined ? `, CPU ${offTp.cpuMicrosPerRequest['airlock-norecord']!.toFixed(0)} µs per request` : '') + (airCpu !== undefined ? `; with recording ${airCpu.toFixed(0)} µs` : ''));
  }
  lines.push('');
  const loads = ALL_TARGETS.filter((t) => results[t]?.loadAverage).map((t) => `${t} ${results[t]!.loadAverage!.start[0]}`);
  if (loads.length) lines.push(`1-min load average at the start of each target (${machine.cpus} cpus): ${loads.join(', ')}`);
  for (const t of ALL_TARGETS) {
    const r = results[t];
    if (r?.status === 'failed') lines.push(`${t}: FAILED - ${r.error} (* = partial number, not used in ratios or goals)`);
    const ka = [r?.latency?.keepAlive, r?.throughput?.keepAlive].filter((k) => k && !k.ok);
    if (r?.throughput?.rounds && r.throughput.rounds.length > 1) {
      lines.push(`${t}: throughput rounds ${r.throughput.rounds.map((x) => x.toFixed(0)).join(', ')} req/s (median used)` +
        (r.throughput.cpuMicrosPerRequest ? `; CPU per request in the median round: ${Object.entries(r.throughput.cpuMicrosPerRequest).map(([k, v]) => `${k} ${v.toFixed(0)} µs`).join(', ')}` : ''));
    }
    for (const [k, when] of [['firstRequest', 'after the throughput rounds'], ['firstRequestAtStart', 'right after start']] as const) {
      const fc = r?.[k]?.cpuMsPerRequest;
      if (fc && Object.keys(fc).length) lines.push(`${t}: first request to a new host ${when}, median CPU during one request: ${cpuText(fc)}`);
    }
    for (const k of ka) {
      lines.push(`${t}: keep-alive warning: ${k!.clientTlsConnections} client connections, expected ${k!.expectedClientConnections}`);
    }
  }
  if (fatal) lines.push(`FATAL: ${fatal.split('\n')[0]}`);
  lines.push(`results: ${file}`);
  process.stdout.write(lines.join('\n') + '\n');

  rmSync(tmp, { recursive: true, force: true });
  const ranBad = fatal !== undefined || ALL_TARGETS.some((t) => results[t]?.status === 'failed');
  return ranBad ? 1 : 0;
}

process.on('SIGINT', () => {
  log('interrupted');
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
