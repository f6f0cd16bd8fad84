/**
 * `airlock run`'s child process: started with the agent's environment, signals passed on the way a
 * shell's foreground job gets them, and its end reported as a shell reports it.
 */
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import crossSpawn from 'cross-spawn';

/**
 * The child's environment: the inherited one, then Airlock's. An inherited variable whose name
 * differs from one of Airlock's only in case is dropped: npm reads `npm_config_*` in any case
 * (a user's `NPM_CONFIG_PROXY` would route npm around Airlock), and Windows keeps one variable per
 * name regardless of case, the first in sorted order, which is the upper-case spelling.
 */
export function mergeAgentEnv(inherited: NodeJS.ProcessEnv, ours: Record<string, string>): NodeJS.ProcessEnv {
  const mine = new Set(Object.keys(ours).map((k) => k.toLowerCase()));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(inherited)) if (!mine.has(k.toLowerCase())) env[k] = v;
  return { ...env, ...ours };
}

/** The exit status a shell gives a command that ended with `code` or was killed by `signal`. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
  return n === undefined ? 1 : 128 + n;
}

/**
 * Which signals the parent passes on to the child, and which it only outlives:
 * - Ctrl-C and Ctrl-\ in a terminal reach the whole foreground process group, the child included;
 *   passing SIGINT/SIGQUIT on as well would deliver them twice, and to an agent such as Claude Code
 *   a second Ctrl-C means "quit". So with a terminal on stdin they are not passed on; without one
 *   (a script or a supervisor signalling this process alone) they are.
 * - SIGTERM and SIGHUP are passed on (a `kill` names this process; a closed terminal's SIGHUP may
 *   reach both, and a second one changes nothing).
 * - Windows: the console sends Ctrl-C, Ctrl-Break and its close to every process attached to it,
 *   and `kill()` there is TerminateProcess (no clean-up in the child): nothing is passed on.
 * In every case the parent stays until the child has ended, so that its token is revoked.
 */
export function signalPlan(platform: NodeJS.Platform, stdinIsTty: boolean): { outlive: NodeJS.Signals[]; forward: NodeJS.Signals[] } {
  if (platform === 'win32') return { outlive: ['SIGINT', 'SIGBREAK', 'SIGHUP', 'SIGTERM'], forward: [] };
  const group: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];
  const alone: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];
  return { outlive: [...group, ...alone], forward: stdinIsTty ? alone : [...group, ...alone] };
}

const START_ERRORS = new Set(['ENOENT', 'EACCES', 'EINVAL', 'ENOEXEC', 'EPERM']);

export interface RunResult {
  /** The status to exit with (the child's, or 128 + its signal, or 127 when it could not start). */
  status: number;
  /** What ended it, for the audit log: an exit code, a signal name, or the start error's code. */
  ended: number | string;
  /** Set when the command could not be started. */
  startError?: NodeJS.ErrnoException;
}

/**
 * Runs `cmd args` with `env` and stdio inherited. Commands are resolved as the platform's shell
 * would (cross-spawn): on Windows through PATH and PATHEXT, so npm's `.cmd` shims (claude, codex,
 * npx) start, run through `cmd.exe` with every argument escaped; elsewhere spawned directly.
 */
export function runAgentCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv,
  opts: { platform?: NodeJS.Platform; stdinIsTty?: boolean } = {}): Promise<RunResult> {
  const plan = signalPlan(opts.platform ?? process.platform, opts.stdinIsTty ?? process.stdin.isTTY === true);
  return new Promise<RunResult>((resolve) => {
    let child: ChildProcess;
    const onSignal = (sig: NodeJS.Signals) => {
      if (plan.forward.includes(sig)) child.kill(sig);
    };
    for (const s of plan.outlive) process.on(s, onSignal);
    let finished = false;
    const done = (r: RunResult) => {
      if (finished) return;
      finished = true;
      for (const s of plan.outlive) process.off(s, onSignal);
      resolve(r);
    };
    try {
      child = crossSpawn(cmd, args, { stdio: 'inherit', env });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      done({ status: 127, ended: err.code ?? 'error', startError: err });
      return;
    }
    child.on('error', (e: NodeJS.ErrnoException) => {
      // The command never started: not found (on Windows cross-spawn reports cmd.exe's "not
      // recognized" as ENOENT), not executable, or refused. Other errors (a failed kill) leave it running.
      if (child.pid === undefined || START_ERRORS.has(e.code ?? '')) done({ status: 127, ended: e.code ?? 'error', startError: e });
    });
    child.once('exit', (code, signal) => done({ status: exitStatus(code, signal), ended: code ?? signal ?? 'unknown' }));
  });
}
