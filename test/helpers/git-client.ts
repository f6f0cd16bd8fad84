// Running the real git CLI in tests, isolated from the user's and the system's configuration.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, type RunResult } from './run';

const PROXY_VARS = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY'];

/**
 * An environment for git with: HOME=home, an empty global config file at `<home>/.gitconfig-test`
 * (GIT_CONFIG_GLOBAL), no system config, no terminal prompt, no askpass, no credential helper,
 * fixed author/committer identity and dates' timezone, C locale. Every inherited GIT_* variable and every
 * proxy variable is dropped (set http.proxy / HTTPS_PROXY explicitly in the test that needs one).
 */
export function gitEnvIsolated(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  mkdirSync(home, { recursive: true });
  const globalConfig = join(home, '.gitconfig-test');
  if (!existsSync(globalConfig)) writeFileSync(globalConfig, '');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GIT_') || PROXY_VARS.includes(k) || k === 'SSH_ASKPASS' || k === 'XDG_CONFIG_HOME') continue;
    env[k] = v;
  }
  Object.assign(env, {
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: globalConfig,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GIT_AUTHOR_NAME: 'Airlock Test',
    GIT_AUTHOR_EMAIL: 'test@airlock.invalid',
    GIT_COMMITTER_NAME: 'Airlock Test',
    GIT_COMMITTER_EMAIL: 'test@airlock.invalid',
    LANG: 'C',
    LC_ALL: 'C',
    // credential.helper is empty anyway (no config files); make it explicit so a helper cannot sneak in.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'credential.helper',
    GIT_CONFIG_VALUE_0: '',
  }, extra);
  return env;
}

export interface RunGitOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Default 60 000 ms; the git process group is killed when it expires. */
  timeoutMs?: number;
}

/** Runs `git ...args`. Never throws on a non-zero exit: check `code`. */
export function runGit(args: readonly string[], opts: RunGitOptions = {}): Promise<RunResult> {
  return runCommand('git', args, { cwd: opts.cwd, env: opts.env, input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** Like runGit but rejects with git's stderr when the exit code is not 0. */
export async function runGitOk(args: readonly string[], opts: RunGitOptions = {}): Promise<RunResult> {
  const r = await runGit(args, opts);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r;
}
