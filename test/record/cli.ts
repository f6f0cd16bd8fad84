// The real `airlock` CLI as child processes, for the record and audit tests: one-shot commands here;
// `serve` comes from the shared helper. Every child is bounded and closed by the caller.
import { runCommand, type RunResult } from '../helpers/run';
import { AIRLOCK_BIN, cleanCliEnv, REPO_ROOT } from '../helpers/airlock';

export { AIRLOCK_BIN, REPO_ROOT, spawnServe, type ServeInfo, type ServeProcess } from '../helpers/airlock';

/** Environment for child CLIs: no inherited proxy settings, Airlock data dir, or test-runner variables. */
export const cliEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => cleanCliEnv(extra);

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

/** Polls `fn` until it returns a value (bounded by `timeoutMs`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
