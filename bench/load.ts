// Load generator: undici clients, direct or through an HTTP CONNECT proxy.
// Every loop here is bounded both in count and in wall time.
import diagnostics_channel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import { log, sleep } from './procs';

export const BODY_BYTES = 1024;

/** Builds a fresh dispatcher with at most `connections` connections per origin. */
export type DispatcherFactory = (connections: number) => Dispatcher;

const common = {
  keepAliveTimeout: 60_000,
  keepAliveMaxTimeout: 120_000,
  headersTimeout: 10_000,
  bodyTimeout: 10_000,
  connectTimeout: 10_000,
};

export function directFactory(upstreamCaPem: string): DispatcherFactory {
  return (connections) => new Agent({ ...common, connections, connect: { ca: upstreamCaPem } });
}

export function proxyFactory(proxyUrl: string, proxyCaPem: string, proxyAuthorization?: string): DispatcherFactory {
  return (connections) =>
    new ProxyAgent({
      ...common,
      uri: proxyUrl,
      connections,
      ...(proxyAuthorization ? { token: proxyAuthorization } : {}),
      requestTls: { ca: proxyCaPem },
    });
}

// ------------------------------------------------ connection counting (client side)

/** Counts TLS connections undici opens to HTTPS origins (direct, or tunnelled through a proxy). */
export const clientConnections = { https: 0, toProxy: 0 };
diagnostics_channel.subscribe('undici:client:connected', (m: unknown) => {
  const p = (m as { connectParams?: { protocol?: string } }).connectParams;
  if (p?.protocol === 'https:') clientConnections.https++;
  else clientConnections.toProxy++;
});
export function takeClientConnections(): { https: number; toProxy: number } {
  const r = { ...clientConnections };
  clientConnections.https = 0;
  clientConnections.toProxy = 0;
  return r;
}

// ------------------------------------------------ one request

async function getOnce(d: Dispatcher, origin: string): Promise<boolean> {
  const res = await d.request({ origin, path: '/', method: 'GET' });
  const body = Buffer.from(await res.body.arrayBuffer());
  return res.statusCode === 200 && body.length === BODY_BYTES;
}

/** One GET that never throws: a failure is not ok, and is logged when `logFailure` (a phase's first). */
async function getLogged(d: Dispatcher, origin: string, logFailure: boolean): Promise<boolean> {
  try {
    return await getOnce(d, origin);
  } catch (e) {
    if (logFailure) log(`  request failed: ${(e as Error).message}`);
    return false;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

function median(sorted: number[]): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

// ------------------------------------------------ sequential latency

export interface LatencyResult {
  samples: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  truncated: boolean;
}

export async function latencyPhase(
  make: DispatcherFactory,
  origin: string,
  warmup: number,
  count: number,
  maxMs = 180_000,
): Promise<LatencyResult> {
  const d = make(1);
  const samples: number[] = [];
  let errors = 0;
  let inARow = 0;
  const deadline = performance.now() + maxMs;
  let truncated = false;
  try {
    for (let i = 0; i < warmup + count; i++) {
      if (performance.now() > deadline) {
        truncated = true;
        break;
      }
      const t0 = performance.now();
      let ok = false;
      let why = 'status not 200 or body not 1024 bytes';
      try {
        ok = await getOnce(d, origin);
      } catch (e) {
        why = (e as Error).message;
        if (errors === 0) log(`  request failed: ${why}`);
      }
      const t1 = performance.now();
      if (!ok) {
        errors++;
        if (++inARow >= 5) throw new Error(`latency phase: 5 requests in a row failed (last: ${why})`);
        if (errors > 20) throw new Error(`latency phase: more than 20 failed requests (last: ${why})`);
        continue;
      }
      inARow = 0;
      if (i >= warmup) samples.push(t1 - t0);
      if (i === warmup - 1) log(`  warm-up done (${warmup}), measuring ${count} sequential requests`);
    }
  } finally {
    await d.close().catch(() => undefined);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    errors,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
    minMs: sorted[0] ?? NaN,
    maxMs: sorted[sorted.length - 1] ?? NaN,
    truncated,
  };
}

// ------------------------------------------------ concurrent throughput

export interface ThroughputResult {
  connections: number;
  measuredSeconds: number;
  completed200: number;
  errors: number;
  requestsPerSecond: number;
  /** CPU microseconds per completed request in the measured window, per process (where the time goes). */
  cpuMicrosPerRequest?: Record<string, number>;
}

/** Processes whose CPU time the throughput phase accounts for: name → CPU seconds so far. */
export type CpuProbes = Record<string, () => number | null>;
type ProbeReading = Record<string, number | null>;

/** Every probe read now. */
function readProbes(probes: CpuProbes): ProbeReading {
  return Object.fromEntries(Object.entries(probes).map(([k, f]) => [k, f()]));
}

export async function throughputPhase(
  make: DispatcherFactory,
  origin: string,
  connections: number,
  warmupMs: number,
  measureMs: number,
  probes: CpuProbes = {},
): Promise<ThroughputResult> {
  const d = make(connections);
  let cpuStart: ProbeReading | null = null;
  let cpuEnd: ProbeReading | null = null;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + measureMs;
  const maxPerWorker = 10_000_000;
  let completed = 0;
  let errors = 0;
  let announced = false;
  const worker = async (): Promise<void> => {
    for (let n = 0; n < maxPerWorker; n++) {
      if (performance.now() >= end) {
        cpuEnd ??= readProbes(probes);
        return;
      }
      const ok = await getLogged(d, origin, errors === 0);
      const t = performance.now();
      if (!announced && t >= measureFrom) {
        announced = true;
        cpuStart = readProbes(probes);
        log(`  warm-up done (${warmupMs / 1000} s), measuring ${measureMs / 1000} s at ${connections} connections`);
      }
      if (ok) {
        if (t >= measureFrom && t <= end) completed++;
      } else {
        if (++errors > 1000) throw new Error('throughput phase: more than 1000 failed requests');
        await sleep(10);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    await d.close().catch(() => undefined);
  }
  const cpuMicrosPerRequest: Record<string, number> = {};
  for (const k of Object.keys(probes)) {
    const a = cpuStart?.[k];
    const b = cpuEnd?.[k];
    if (a != null && b != null && completed > 0) cpuMicrosPerRequest[k] = ((b - a) * 1e6) / completed;
  }
  return {
    connections,
    measuredSeconds: measureMs / 1000,
    completed200: completed,
    errors,
    requestsPerSecond: completed / (measureMs / 1000),
    cpuMicrosPerRequest,
  };
}

// ------------------------------------------------ steady load (a fixed rate, below saturation)

export interface PacedResult {
  perSecond: number;
  connections: number;
  measuredSeconds: number;
  completed200: number;
  errors: number;
  /**
   * Each request's time to its full response, ms: from its scheduled start when its connection was still
   * busy then (that wait is the proxy's: no coordinated omission), else from when it was sent.
   */
  samplesMs: number[];
  /** CPU seconds each process used in the measured window. */
  cpuSeconds: Record<string, number>;
}

/**
 * Requests at a fixed rate on `connections` kept-alive connections: request i is due at
 * start + i / perSecond, on connection i mod connections. Below saturation this shows what a proxy
 * adds to each request, and what it costs in CPU, without the machine's saturation dynamics.
 */
export async function pacedPhase(
  make: DispatcherFactory,
  origin: string,
  connections: number,
  perSecond: number,
  warmupMs: number,
  measureMs: number,
  probes: CpuProbes = {},
): Promise<PacedResult> {
  const d = make(connections);
  const start = performance.now() + 20;
  const measureFrom = start + warmupMs;
  const end = measureFrom + measureMs;
  const total = Math.ceil(((warmupMs + measureMs) / 1000) * perSecond);
  const samplesMs: number[] = [];
  let completed = 0;
  let errors = 0;
  let cpuStart: ProbeReading = {};
  let cpuEnd: ProbeReading = {};
  const probeAt = async (t: number): Promise<ProbeReading> => {
    await sleep(Math.max(0, t - performance.now()));
    return readProbes(probes);
  };
  const worker = async (w: number): Promise<void> => {
    for (let i = w; i < total; i += connections) {
      const due = start + (i * 1000) / perSecond;
      // Still busy with the previous request when this one was due: the wait counts (the proxy's delay);
      // otherwise the clock starts at the send (a timer waking late is the load generator's delay).
      const behind = performance.now() >= due;
      // Timers count whole milliseconds from the event loop's cached clock, so one can fire a little early.
      for (let n = 0, wait = due - performance.now(); wait > 0 && n < 100; n++, wait = due - performance.now()) await sleep(Math.ceil(wait));
      const t0 = behind ? due : performance.now();
      const ok = await getLogged(d, origin, errors === 0);
      const t = performance.now();
      if (!ok) {
        if (++errors > 1000) throw new Error('paced phase: more than 1000 failed requests');
      } else if (due >= measureFrom && due < end) {
        completed++;
        samplesMs.push(t - t0);
      }
      if (t > end + 30_000) throw new Error('paced phase: the proxy fell more than 30 s behind the schedule');
    }
  };
  try {
    const probing = (async () => {
      cpuStart = await probeAt(measureFrom);
      cpuEnd = await probeAt(end);
    })();
    await Promise.all([...Array.from({ length: connections }, (_, w) => worker(w)), probing]);
  } finally {
    await d.close().catch(() => undefined);
  }
  const cpuSeconds: Record<string, number> = {};
  for (const k of Object.keys(probes)) {
    const a = cpuStart[k];
    const b = cpuEnd[k];
    if (a != null && b != null) cpuSeconds[k] = b - a;
  }
  return { perSecond, connections, measuredSeconds: measureMs / 1000, completed200: completed, errors, samplesMs, cpuSeconds };
}

/** p50 and p99 of a list of milliseconds. */
export function percentiles(samples: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

// ------------------------------------------------ first request to a new host

export interface FirstRequestResult {
  samples: number;
  errors: number;
  medianMs: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

/** One fresh dispatcher (no pooling, no TLS session cache) per sample; each sample uses a different host. */
export async function firstRequestPhase(make: DispatcherFactory, origins: string[]): Promise<FirstRequestResult> {
  const samples: number[] = [];
  let errors = 0;
  for (const origin of origins) {
    const d = make(1);
    try {
      const t0 = performance.now();
      const ok = await getOnce(d, origin);
      const t1 = performance.now();
      if (ok) samples.push(t1 - t0);
      else errors++;
    } catch (e) {
      errors++;
      log(`  ${origin}: ${(e as Error).message}`);
    } finally {
      await d.close().catch(() => undefined);
    }
    if (errors > 5) throw new Error('first-request phase: more than 5 failed requests');
  }
  return summarizeSamples(samples, errors);
}

/** Median, p90, min and max of first-request samples (ms). */
export function summarizeSamples(samples: number[], errors: number): FirstRequestResult {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    errors,
    medianMs: median(sorted),
    p90Ms: percentile(sorted, 90),
    minMs: sorted[0] ?? NaN,
    maxMs: sorted[sorted.length - 1] ?? NaN,
    samplesMs: samples.map((s) => Math.round(s * 1000) / 1000),
  };
}
