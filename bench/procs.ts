// Child processes of the benchmark: the upstream, Airlock and mitmdump.
// Every wait is bounded; every child is stopped with SIGTERM, then SIGKILL after 5 s.
import { spawn, fork, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const AIRLOCK_BIN = join(REPO_ROOT, 'bin', 'airlock.mjs');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The informative part of a child's stderr: no stack frames, at most `max` lines. */
function summarize(text: string, max = 6): string {
  const lines = text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() && !/^\s+at /.test(l) && !/^Node\.js v/.test(l));
  return lines.slice(-max).join('\n  ');
}

/** Keeps the last `max` lines a stream produced (so a pipe never fills and errors can be quoted). */
function tail(stream: NodeJS.ReadableStream | null, max = 40): { lines: string[]; text(): string } {
  const lines: string[] = [];
  let partial = '';
  stream?.setEncoding?.('utf8');
  stream?.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      lines.push(p);
      if (lines.length > max) lines.shift();
    }
  });
  return { lines, text: () => [...lines, partial].filter(Boolean).join('\n') };
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (exited(child)) {
    live.delete(child);
    return;
  }
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (!exited(child)) child.kill('SIGKILL');
  }, graceMs);
  await done;
  clearTimeout(t);
  live.delete(child);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, 1000);
    sock.once('connect', () => {
      clearTimeout(t);
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** /proc/<pid>/status VmHWM and VmRSS in bytes (null when the process is gone). */
export function memoryOf(pid: number): { peakRssBytes: number; rssBytes: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => {
      const m = new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, 'm').exec(s);
      if (!m) throw new Error(`${k} missing`);
      return Number(m[1]) * 1024;
    };
    return { peakRssBytes: kb('VmHWM'), rssBytes: kb('VmRSS') };
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat; null when it is gone). Whole process, all threads. */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = 100; // USER_HZ on Linux

/**
 * CPU milliseconds a process has run so far, to the microsecond: the sum of /proc/<pid>/task/<tid>/schedstat
 * over its threads (Linux with scheduler statistics). Null where that is not available or the process is gone.
 * Threads that have already exited are not counted, so take differences over short spans only.
 */
export function cpuMillisPreciseOf(pid: number): number | null {
  try {
    let ns = 0;
    let read = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        read++;
      } catch {
        // the thread ended between the listing and the read
      }
    }
    return read > 0 && Number.isFinite(ns) ? ns / 1e6 : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- upstream

export interface UpstreamStats {
  connections: number;
  requests: number;
  byIp: Record<string, number>;
}

export interface Upstream {
  port: number;
  pid: number;
  /** Connections and requests since the last reset; resets the counters when reset is true. */
  stats(reset?: boolean): Promise<UpstreamStats>;
  stop(): Promise<void>;
}

export async function startUpstream(certPath: string, keyPath: string, ipCount: number): Promise<Upstream> {
  const child = fork(fileURLToPath(new URL('./upstream.ts', import.meta.url)), [certPath, keyPath, String(ipCount)], {
    execArgv: ['--import', 'tsx'],
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('upstream did not report ready within 30 s')), 30_000);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`upstream exited early (code ${code})`));
    });
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m?.type === 'ready' && typeof m.port === 'number') {
        clearTimeout(t);
        resolve(m.port);
      }
    });
  });
  return {
    port,
    pid: child.pid!,
    stats(reset = false) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('upstream did not answer stats within 10 s')), 10_000);
        const on = (m: { type?: string } & UpstreamStats): void => {
          if (m?.type !== 'stats') return;
          clearTimeout(t);
          child.off('message', on);
          resolve({ connections: m.connections, requests: m.requests, byIp: m.byIp });
        };
        child.on('message', on);
        child.send({ cmd: 'stats', reset });
      });
    },
    async stop() {
      if (!exited(child) && child.connected) child.send({ cmd: 'close' });
      const t = setTimeout(() => void stopChild(child), 3000);
      if (!exited(child)) await new Promise((r) => child.once('exit', r));
      clearTimeout(t);
      live.delete(child);
    },
  };
}

// ---------------------------------------------------------------- proxies

export interface ProxyProcess {
  proxyUrl: string;
  /** PEM of the CA the proxy signs its leaf certificates with. */
  caPem: string;
  /** Proxy-Authorization header value, when the proxy wants one. */
  proxyAuthorization?: string;
  pid: number;
  info: Record<string, unknown>;
  stop(): Promise<void>;
}

function parseJsonLine(text: string): Record<string, unknown> | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (const l of lines.reverse()) {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
  }
  return null;
}

function runJson(args: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [process.env.BENCH_AIRLOCK_BIN || AIRLOCK_BIN, ...args],
      { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const cmd = `node bin/airlock.mjs ${args.join(' ')}`;
        if (err) {
          const why = (err as NodeJS.ErrnoException & { killed?: boolean }).killed
            ? `timed out after ${timeoutMs / 1000} s`
            : `exited with ${(err as { code?: unknown }).code ?? 'error'}`;
          const detail = summarize(stderr || stdout);
          reject(new Error(`\`${cmd}\` ${why}${detail ? `:\n  ${detail}` : ''}`));
          return;
        }
        const obj = parseJsonLine(stdout);
        if (!obj) reject(new Error(`\`${cmd}\` printed no JSON line on stdout (got: ${stdout.trim().slice(0, 200)})`));
        else resolve(obj);
      },
    );
  });
}

/**
 * Waits (bounded) for the first JSON line on a child's stdout that `accept` takes (lines may arrive in
 * any chunks), then keeps stdout draining. Rejects with `what` and the child's last stderr lines if the
 * child exits, cannot start, or prints no such line within `timeoutMs`.
 */
function firstJsonLine<T>(
  child: ChildProcess,
  stderr: { text(): string },
  what: string,
  expected: string,
  accept: (obj: Record<string, unknown>) => T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buf = '';
    const done = (): void => {
      clearTimeout(t);
      child.off('exit', onExit);
      child.off('error', onError);
      child.stdout!.off('data', onData);
      child.stdout!.resume(); // keep draining
    };
    const fail = (msg: string): void => {
      done();
      const detail = summarize(stderr.text());
      reject(new Error(`${what} ${msg}${detail ? `:\n  ${detail}` : ''}`));
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void => fail(`exited early (${sig ?? `code ${code}`})`);
    const onError = (e: Error): void => fail(`could not start (${e.message})`);
    const onData = (chunk: string): void => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // not JSON
        }
        const v = accept(obj);
        if (v !== undefined) {
          done();
          resolve(v);
          return;
        }
      }
    };
    const t = setTimeout(() => fail(`printed no ${expected} within ${timeoutMs / 1000} s`), timeoutMs);
    child.once('exit', onExit);
    child.once('error', onError);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', onData);
  });
}

export async function startAirlock(dataDir: string, upstreamCaPath: string): Promise<ProxyProcess> {
  if (!existsSync(AIRLOCK_BIN)) throw new Error(`${AIRLOCK_BIN} does not exist`);
  const agent = await runJson(['agent', 'add', 'bench', '--data-dir', dataDir, '--json'], 60_000);
  if (typeof agent.token !== 'string' || !agent.token) {
    throw new Error(`\`airlock agent add bench --json\` printed no token: ${JSON.stringify(agent)}`);
  }
  const token = agent.token;
  // BENCH_AIRLOCK_NODE_FLAGS: extra node flags for the Airlock process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  // BENCH_AIRLOCK_BIN: another build's bin/airlock.mjs (e.g. a worktree of the previous commit) for A/B runs (its own CLI creates the data dir, so a schema change is no obstacle).
  const nodeFlags = (process.env.BENCH_AIRLOCK_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const args = [
    ...nodeFlags, process.env.BENCH_AIRLOCK_BIN || AIRLOCK_BIN, 'serve', '--data-dir', dataDir, '--proxy-port', '0', '--console-port', '0', '--json',
    '--upstream-ca', upstreamCaPath,
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const err = tail(child.stderr);
  const info = await firstJsonLine(child, err, '`node bin/airlock.mjs serve --json …`', 'JSON line with proxyUrl', (o) => (typeof o.proxyUrl === 'string' ? o : undefined)).catch(async (e: unknown) => {
    await stopChild(child);
    throw e;
  });
  const caPath = info.caPath;
  if (typeof caPath !== 'string' || !existsSync(caPath)) {
    await stopChild(child);
    throw new Error(`Airlock's JSON line names no readable caPath: ${JSON.stringify(info)}`);
  }
  const pid = typeof info.pid === 'number' && existsSync(`/proc/${info.pid}`) ? info.pid : child.pid!;
  return {
    proxyUrl: info.proxyUrl as string,
    caPem: readFileSync(caPath, 'utf8'),
    proxyAuthorization: `Basic ${Buffer.from(`bench:${token}`).toString('base64')}`,
    pid,
    info,
    stop: () => stopChild(child),
  };
}

export function findMitmdump(): string | null {
  const candidates = ['/usr/bin/mitmdump', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'mitmdump'))];
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      /* absent */
    }
  }
  return null;
}

export function mitmdumpVersion(bin: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(bin, ['--version'], { timeout: 30_000 }, (err, stdout) => {
      if (err) resolve(`unknown (${err.message.split('\n')[0]})`);
      else resolve(stdout.trim().split('\n').map((l) => l.trim()).join('; '));
    });
  });
}

export async function startMitmdump(bin: string, confDir: string, upstreamCaPath: string): Promise<ProxyProcess> {
  const port = await freePort();
  const args = [
    '--listen-host', '127.0.0.1', '--listen-port', String(port),
    '--set', `confdir=${confDir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${upstreamCaPath}`,
    '--set', 'flow_detail=0',
    '--set', 'termlog_verbosity=error',
    '-q',
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const caFile = join(confDir, 'mitmproxy-ca-cert.pem');
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (exited(child)) throw new Error(`mitmdump exited early (code ${child.exitCode}): ${err.text() || out.text()}`);
      if (existsSync(caFile) && (await portAccepts(port))) break;
      if (Date.now() > deadline) throw new Error(`mitmdump did not accept on port ${port} within 30 s: ${err.text()}`);
      await sleep(100);
    }
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return {
    proxyUrl: `http://127.0.0.1:${port}`,
    caPem: readFileSync(caFile, 'utf8'),
    pid: child.pid!,
    info: { args },
    stop: () => stopChild(child),
  };
}

/** The modes of bench/reference-proxy.ts. */
export type ReferenceMode = 'tls-pipe' | 'http-undici' | 'raw-undici' | 'raw-raw';

/**
 * A reference proxy (bench/reference-proxy.ts): a TLS pipe without HTTP, a bare node:http + undici
 * MITM, or HTTP/1.1 by hand on one or both sides. It presents the bench upstream's own certificate, so
 * the client trusts the bench CA for it.
 */
export async function startReferenceProxy(
  mode: ReferenceMode,
  pki: { certPath: string; keyPath: string; caPath: string },
): Promise<ProxyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./reference-proxy.ts', import.meta.url)), mode, pki.certPath, pki.keyPath, pki.caPath], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const err = tail(child.stderr);
  try {
    const port = await firstJsonLine(child, err, `reference proxy ${mode}`, 'JSON line with its port', (o) => (typeof o.port === 'number' ? o.port : undefined));
    return { proxyUrl: `http://127.0.0.1:${port}`, caPem: readFileSync(pki.caPath, 'utf8'), pid: child.pid!, info: { mode }, stop: () => stopChild(child) };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}
