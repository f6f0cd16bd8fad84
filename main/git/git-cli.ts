// The single place that spawns `git`. Never prompts, never reads the system config,
// never uses a credential helper.
import { spawn } from 'node:child_process';
import { GitError } from './errors';

export interface GitOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | NodeJS.ReadableStream;
  /** Exit codes that are not failures (default [0]). */
  okCodes?: number[];
  /** Short description for error messages (default 'git <first arg>'). */
  name?: string;
  timeoutMs?: number;
  /**
   * Streams stdout to this callback instead of collecting it (result.stdout is then empty).
   * Returning false stops git early (it is killed; the run counts as successful, `stopped` is set).
   */
  onStdout?: (chunk: Buffer) => boolean | void;
}

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** onStdout asked to stop and git was killed. */
  stopped?: boolean;
}

/**
 * "No file" for git's `GIT_CONFIG_GLOBAL` (Airlock's git ignores the user's ~/.gitconfig). Spelt
 * `/dev/null` on every platform: Git for Windows maps that name to NUL itself, while Node's
 * `os.devNull` there (`\\.\nul`) makes it fail with "unable to access".
 */
export const GIT_NO_CONFIG = '/dev/null';

const MAX_STDERR = 64 * 1024;
const isWindows = process.platform === 'win32';
/** Variables that could make git prompt or ask a helper for secrets. */
const DROPPED_ENV = ['GIT_ASKPASS', 'SSH_ASKPASS', 'GIT_TRACE', 'GIT_TRACE_PACKET', 'GIT_TRACE_CURL'];

function firstLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const fatal = lines.find((l) => l.startsWith('fatal:') || l.startsWith('error:'));
  return (fatal ?? lines[0] ?? '').slice(0, 300);
}

/** The git subcommand in `args`, skipping global options (and the values of -c, -C, --git-dir...). */
function subcommand(args: string[]): string {
  const withValue = new Set(['-c', '-C', '--git-dir', '--work-tree', '--namespace', '--exec-path', '--config-env']);
  for (let i = 0; i < args.length; i++) {
    if (withValue.has(args[i])) { i++; continue; }
    if (!args[i].startsWith('-')) return args[i];
  }
  return args[0] ?? '';
}

export function git(args: string[], opts: GitOptions = {}): Promise<GitResult> {
  const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env) };
  for (const k of DROPPED_ENV) delete env[k];
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_CONFIG_NOSYSTEM = '1';
  const fullArgs = ['-c', 'credential.helper=', '-c', 'core.askPass=', ...args];
  const name = opts.name ?? `git ${subcommand(args)}`.trim();
  const okCodes = opts.okCodes ?? [0];

  return new Promise((resolve, reject) => {
    let child;
    try {
      // Own process group on POSIX so a timeout or stop also ends git's children (hooks, aliases, remote helpers).
      child = spawn('git', fullArgs, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, detached: !isWindows });
    } catch (e) {
      reject(new GitError(`${name} could not start: ${(e as Error).message}`, args, -1, ''));
      return;
    }
    const out: Buffer[] = [];
    let errText = '';
    let stopped = false;
    let timedOut = false;
    let settled = false;
    const kill = (): void => {
      try {
        if (!isWindows && child.pid) process.kill(-child.pid, 'SIGKILL');
        else if (isWindows && child.pid) {
          // Windows has no process groups to signal: end git and every process it started (remote
          // helpers, index-pack, hooks), which would otherwise hold its output open and 'close' late.
          spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { stdio: 'ignore', windowsHide: true })
            .on('error', () => child.kill('SIGKILL'));
        } else child.kill('SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = opts.timeoutMs
      ? setTimeout(() => { timedOut = true; kill(); }, opts.timeoutMs)
      : null;

    child.stdout.on('data', (chunk: Buffer) => {
      if (stopped) return;
      if (opts.onStdout) {
        if (opts.onStdout(chunk) === false) { stopped = true; kill(); }
      } else {
        out.push(chunk);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => { if (errText.length < MAX_STDERR) errText += s; });
    child.stdin.on('error', () => { /* git may exit before reading all input (EPIPE) */ });
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      reject(new GitError(`${name} could not start: ${e.message}`, args, -1, errText));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      const stderr = errText.slice(0, MAX_STDERR);
      if (timedOut) {
        reject(new GitError(`${name} timed out after ${opts.timeoutMs} ms.`, args, -1, stderr));
        return;
      }
      if (stopped) { resolve({ code: code ?? -1, stdout: Buffer.alloc(0), stderr, stopped: true }); return; }
      const c = code ?? -1;
      if (!okCodes.includes(c)) {
        const why = firstLine(stderr) || (signal ? `killed by ${signal}` : 'no error output');
        reject(new GitError(`${name} failed with exit code ${c}: ${why}`, args, c, stderr));
        return;
      }
      resolve({ code: c, stdout: Buffer.concat(out), stderr });
    });

    const input = opts.input;
    if (input === undefined) child.stdin.end();
    else if (Buffer.isBuffer(input)) child.stdin.end(input);
    else {
      input.on('error', (e) => { child.stdin.destroy(e as Error); kill(); });
      input.pipe(child.stdin);
    }
  });
}
