// The real `airlock` CLI as child processes, for the record and audit tests: one-shot commands and `serve`.
// Every child is bounded (runCommand's timeout, spawnServe's 30 s start limit) and closed by the caller.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type RunResult } from '../helpers/run';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AIRLOCK_BIN = join(REPO_ROOT, 'bin', 'airlock.mjs');

/** Environment for child CLIs: no inherited proxy settings, Airlock data dir, or test-runner variables. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(https?|all|no)_proxy$/i.test(k) || k === 'AIRLOCK_DATA_DIR' || k === 'NODE_OPTIONS' || k === 'NODE_EXTRA_CA_CERTS') continue;
    if (k.startsWith('NODE_TEST')) continue;
    env[k] = v;
  }
  return { ...env, AIRLOCK_LOG: 'error', ...extra };
}

/** `node bin/airlock.mjs ...args`; never throws, check `code`. */
export function airlock(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return runCommand(process.execPath, [AIRLOCK_BIN, ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(),
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
}

/** Like airlock() but rejects with stderr unless the exit code is 0. */
export async function airlockOk(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await airlock(args, opts);
  if (r.code !== 0) throw new Error(`airlock ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

export interface ServeInfo {
  proxyUrl: string;
  consoleUrl: string | null;
  caPath: string;
  bundlePath: string;
  dataDir: string;
  pid: number;
}

export interface ServeProcess {
  info: ServeInfo;
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, SIGKILL after 5 s; resolves once exited. Idempotent. */
  close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node bin/airlock.mjs serve --json --data-dir DIR ...args`; resolves with the JSON line (rejects after 30 s or on exit). */
export function spawnServe(dataDir: string, args: string[] = []): Promise<ServeProcess> {
  const child = spawn(process.execPath, [AIRLOCK_BIN, 'serve', '--json', '--data-dir', dataDir, ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(),
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
        resolvePromise({ info: JSON.parse(out.slice(0, nl)) as ServeInfo, child, stderr: () => err, exited, close });
      } catch (e) {
        void close();
        reject(new Error(`airlock serve printed a line that is not JSON: ${out.slice(0, nl)} (${(e as Error).message})`));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!done) reject(new Error(`airlock serve exited (${code ?? signal}) before printing JSON: ${err.trim()}`));
    });
  });
}

/** Polls `fn` every `intervalMs` until it returns a non-undefined value or `timeoutMs` passes (then rejects with `what`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
