// A real Airlock for tests: in-process (`startTestAirlock`) or the real CLI as a child process (`spawnServe`).
// Loopback only, temp data dirs, every server/process closed by `close()`.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import type { OptionsInput } from '../../main/config/options';
import { createLogger, type Logger } from '../../main/log';
import { startAirlock, type AirlockService, type StartAirlockOptions } from '../../main/service';
import { makeTempDir, removeDir } from './tmp';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AIRLOCK_BIN = join(REPO_ROOT, 'bin', 'airlock.mjs');

export interface TestAirlock {
  dataDir: string;
  /** http://127.0.0.1:PORT */
  proxyUrl: string;
  proxyPort: number;
  consoleUrl: string | null;
  /** The Airlock CA certificate (what clients must trust). */
  caPath: string;
  /** System roots + Airlock CA. */
  bundlePath: string;
  adminToken: string;
  service: AirlockService;
  /** Creates agent `name` (group ai-coding) and returns a fresh token for it. */
  addAgent(name: string): Promise<string>;
  /** `Basic base64(name:token)` */
  basic(name: string, token: string): string;
  /** Stops the gateway and console, closes the store, removes the data dir. Idempotent. */
  close(): Promise<void>;
}

export interface TestAirlockOptions {
  /** Extra CA files trusted for upstream TLS (e.g. the test PKI's caPath). */
  upstreamCa?: string[];
  /** Any other option (timeouts, maxHeaderCount…). */
  options?: Partial<OptionsInput>;
  /** Default: errors only, on stderr. */
  log?: Logger;
  /** The built renderer, to serve the web console (tests that drive it in Chromium). */
  staticDir?: string;
  /** The store's own SQLite connection once open (tests that make SQLite refuse writes). */
  testStoreConnection?: StartAirlockOptions['testStoreConnection'];
}

export async function startTestAirlock(opts: TestAirlockOptions = {}): Promise<TestAirlock> {
  const dataDir = await makeTempDir('airlock-test-data-');
  let running;
  try {
    running = await startAirlock({
      dataDir,
      log: opts.log ?? createLogger('error'),
      ...opts.options,
      proxyPort: opts.options?.proxyPort ?? 0,
      consolePort: opts.options?.consolePort === undefined ? 0 : opts.options.consolePort,
      upstreamCa: opts.upstreamCa ?? opts.options?.upstreamCa ?? [],
      staticDir: opts.staticDir,
      testStoreConnection: opts.testStoreConnection,
    });
  } catch (e) {
    await removeDir(dataDir);
    throw e;
  }
  const { service } = running;
  let closing: Promise<void> | undefined;
  return {
    dataDir,
    proxyUrl: running.proxyUrl,
    proxyPort: Number(new URL(running.proxyUrl).port),
    consoleUrl: running.consoleUrl,
    caPath: running.caPath,
    bundlePath: running.bundlePath,
    adminToken: running.adminToken,
    service,
    async addAgent(name: string): Promise<string> {
      if (!service.store.agents.get(name)) service.store.agents.add(name, ['ai-coding']);
      const token = newAgentToken();
      service.store.agents.addToken(name, hashToken(token), 'test', null);
      return token;
    },
    basic: (name, token) => `Basic ${Buffer.from(`${name}:${token}`).toString('base64')}`,
    close() {
      closing ??= (async () => {
        await service.close();
        await removeDir(dataDir);
      })();
      return closing;
    },
  };
}

export interface ServeInfo {
  proxyUrl: string;
  consoleUrl: string | null;
  consoleOpenUrl: string | null;
  caPath: string;
  bundlePath: string;
  dataDir: string;
  pid: number;
}

export interface ServeProcess {
  info: ServeInfo;
  child: ChildProcess;
  /** stderr so far (for failure messages). */
  stderr(): string;
  /** Resolves with the exit code (or -1 for a signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after 5 s. Resolves when the process has exited. Idempotent. */
  close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Environment for child CLIs, from `base` (default process.env): no inherited proxy settings, Airlock data dir,
 * NODE_OPTIONS / NODE_EXTRA_CA_CERTS, or test-runner variables; the gateway logs errors only.
 */
export function cleanCliEnv(extra: NodeJS.ProcessEnv = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (/^(https?|all|no)_proxy$/i.test(k) || k === 'AIRLOCK_DATA_DIR' || k === 'NODE_OPTIONS' || k === 'NODE_EXTRA_CA_CERTS') continue;
    if (k.startsWith('NODE_TEST')) continue; // do not make children think they are test-runner children
    env[k] = v;
  }
  return { ...env, AIRLOCK_LOG: 'error', ...extra };
}

/**
 * Runs `node bin/airlock.mjs serve --json --data-dir DIR ...args` and resolves with the parsed JSON line
 * (rejects with stderr when the process exits first or after 30 s).
 */
export function spawnServe(dataDir: string, args: string[] = [], env: NodeJS.ProcessEnv = cleanCliEnv()): Promise<ServeProcess> {
  const child = spawn(process.execPath, [AIRLOCK_BIN, 'serve', '--json', '--data-dir', dataDir, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => { if (err.length < 64 * 1024) err += c; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
    child.once('error', () => res({ code: -1, signal: null }));
  });
  let closing: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const close = () => {
    closing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    })();
    return closing;
  };
  return new Promise<ServeProcess>((resolvePromise, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      void close();
      reject(new Error(`airlock serve printed no JSON line within 30 s; stderr: ${err}`));
    }, 30_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl === -1 || done) return;
      done = true;
      clearTimeout(timer);
      try {
        const info = JSON.parse(out.slice(0, nl)) as ServeInfo;
        resolvePromise({ info, child, stderr: () => err, exited, close });
      } catch (e) {
        void close();
        reject(new Error(`airlock serve printed a line that is not JSON: ${out.slice(0, nl)} (${(e as Error).message})`));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`airlock serve exited (${code ?? signal}) before printing JSON: ${err.trim()}`), { code, stderr: err }));
    });
  });
}
