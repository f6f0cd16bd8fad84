// Bounded child processes for tests: output captured (capped), killed (whole process group) on timeout.
import { spawn } from 'node:child_process';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, then stdin is closed. Without it stdin is closed immediately. */
  input?: string | Buffer;
  /** Default 60 000 ms. The child's process group gets SIGKILL when it expires. */
  timeoutMs?: number;
  /** Per-stream capture cap in bytes (default 64 MiB); extra output is dropped. */
  maxOutputBytes?: number;
}

export interface RunResult {
  /** Exit code; -1 if the child was killed by a signal or could not be started. */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
  timedOut: boolean;
}

/** Runs `cmd args` and resolves when it exits. Never rejects; a spawn failure gives code -1 and the error in stderr. */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const cap = opts.maxOutputBytes ?? 64 * 1024 * 1024;
  return new Promise<RunResult>((resolve) => {
    const out: Buffer[] = []; const err: Buffer[] = [];
    let outLen = 0; let errLen = 0;
    let timedOut = false;
    let settled = false;
    let spawnError: Error | undefined;
    const child = spawn(cmd, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: process.platform !== 'win32', // own process group, so a timeout kills grandchildren too
    });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch { try { child.kill('SIGKILL'); } catch { /* gone */ } }
    };
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      const stdoutBuffer = Buffer.concat(out);
      let stderr = Buffer.concat(err).toString('utf8');
      if (spawnError) stderr += `${stderr ? '\n' : ''}${spawnError.message}`;
      if (timedOut) stderr += `${stderr ? '\n' : ''}[runCommand] killed after ${timeoutMs} ms: ${cmd} ${args.join(' ')}`;
      resolve({ code: code ?? -1, signal, stdout: stdoutBuffer.toString('utf8'), stderr, stdoutBuffer, timedOut });
    };
    let grace: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
      // If something still holds the pipes open, give up waiting after a short grace period.
      grace = setTimeout(() => finish(null, 'SIGKILL'), 2_000);
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => { if (outLen < cap) { out.push(c); outLen += c.length; } });
    child.stderr.on('data', (c: Buffer) => { if (errLen < cap) { err.push(c); errLen += c.length; } });
    child.on('error', (e) => { spawnError = e; finish(-1, null); });
    child.on('close', (code, signal) => finish(code, signal));
    child.stdin.on('error', () => { /* child may exit without reading stdin */ });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}
