import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CaError, caPaths, loadOrCreateCa, rotateCa, writeTrustBundle } from '../certs';
import { hashToken, newAgentToken } from './agents/tokens';
import { dataPaths, defaultDataDir, type DataPaths } from './config/paths';
import { AirlockError } from './contract/errors';
import { agentEnv, exportLines } from './env/agent-env';
import { writeNodePreload } from './env/node-preload';
import { ensureDataDir, startAirlock, VERSION } from './service';
import { openStore, type Store } from './store';

const USAGE = `airlock ${VERSION}: holds AI agents' git pushes and risky API calls for review.

Usage:
  airlock serve [--proxy-port N] [--console-port N|off] [--upstream-ca FILE]... [--json]
  airlock agent add NAME [--group G]... [--json]      create an agent; prints its token once
  airlock agent list [--json]
  airlock agent remove NAME
  airlock env --agent NAME [--token TOKEN]             export lines that route a shell through Airlock
  airlock run --agent NAME -- CMD [ARGS...]            run a command routed through Airlock
  airlock ca path | export | rotate

Every command takes --data-dir DIR (or AIRLOCK_DATA_DIR); default: ${defaultDataDir()}
`;

/** A mistake the user can fix: printed as one line, exit code 2 (usage) or 1. */
class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>, allowPositionals = true): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
}

function dataDirOf(v: Values): string {
  return typeof v['data-dir'] === 'string' ? resolve(v['data-dir']) : defaultDataDir();
}

function intOption(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number (0-65535), got "${v}"`);
  return n;
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

function withStore<T>(paths: DataPaths, fn: (store: Store) => T): T {
  const store = openStore(paths.db);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

export interface RuntimeInfo {
  pid: number;
  proxyUrl: string;
  consoleUrl: string | null;
}

/** The gateway running on this data dir, or a clear error. */
export function runningGateway(paths: DataPaths): RuntimeInfo {
  let info: RuntimeInfo;
  try {
    info = JSON.parse(readFileSync(paths.runtime, 'utf8')) as RuntimeInfo;
  } catch {
    throw new AirlockError('unavailable', `no Airlock gateway is running for ${paths.dir}; start one with \`airlock serve\``);
  }
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') {
      throw new AirlockError('unavailable', `the Airlock gateway for ${paths.dir} is not running (stale pid ${info.pid}); start one with \`airlock serve\``);
    }
  }
  return info;
}

async function cmdServe(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'proxy-port': { type: 'string' },
    'console-port': { type: 'string' },
    'upstream-ca': { type: 'string', multiple: true },
    json: { type: 'boolean' },
  }, false);
  const dataDir = dataDirOf(values);
  const consoleRaw = values['console-port'];
  const running = await startAirlock({
    dataDir,
    proxyPort: intOption(values['proxy-port'], 'proxy-port'),
    consolePort: consoleRaw === 'off' ? null : intOption(consoleRaw, 'console-port'),
    upstreamCa: (values['upstream-ca'] as string[] | undefined)?.map((f) => resolve(f)),
  });
  const info = {
    proxyUrl: running.proxyUrl,
    consoleUrl: running.consoleUrl,
    consoleOpenUrl: running.consoleUrl ? `${running.consoleUrl}/#token=${running.adminToken}` : null,
    caPath: running.caPath,
    bundlePath: running.bundlePath,
    dataDir: running.dataDir,
    pid: process.pid,
  };
  if (values.json) out(JSON.stringify(info));
  else {
    out(`Airlock ${VERSION} is running.`);
    out(`  proxy:    ${info.proxyUrl}   (agents: airlock run --agent NAME -- CMD)`);
    out(`  console:  ${info.consoleOpenUrl ?? 'off'}`);
    out(`  CA:       ${info.caPath}`);
    out(`  data dir: ${info.dataDir}`);
  }
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      running.service.log.info(`received ${sig}, shutting down`);
      running.service.close().finally(() => resolveStop());
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

async function cmdAgent(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { json: { type: 'boolean' }, group: { type: 'string', multiple: true } });
  const paths = ensureDataDir(dataDirOf(values));
  if (sub === 'add') {
    const name = positionals[0];
    if (!name) throw new UsageError('usage: airlock agent add NAME [--group G]...');
    const groups = (values.group as string[] | undefined) ?? ['ai-coding'];
    const token = newAgentToken();
    withStore(paths, (s) => {
      s.agents.add(name, groups);
      s.agents.addToken(name, hashToken(token), 'created with agent add', null);
      s.audit.append({ actor: localActor(), action: 'agent.added', subject: name, details: { groups } });
    });
    if (values.json) out(JSON.stringify({ name, groups, token }));
    else {
      out(`Agent "${name}" created. Its token (shown once, store it now):`);
      out(token);
      out(`Route a command through Airlock: airlock run --agent ${name} -- CMD`);
    }
    return 0;
  }
  if (sub === 'list') {
    const agents = withStore(paths, (s) => s.agents.list());
    if (values.json) out(JSON.stringify(agents));
    else if (agents.length === 0) out('no agents yet: airlock agent add NAME');
    else for (const a of agents) out(`${a.name}\t${a.groups.join(',')}\t${a.createdAt}`);
    return 0;
  }
  if (sub === 'remove') {
    const name = positionals[0];
    if (!name) throw new UsageError('usage: airlock agent remove NAME');
    const removed = withStore(paths, (s) => {
      const ok = s.agents.remove(name);
      if (ok) s.audit.append({ actor: localActor(), action: 'agent.removed', subject: name, details: {} });
      return ok;
    });
    if (!removed) throw new AirlockError('not-found', `no agent named "${name}"`);
    out(`Agent "${name}" removed; its tokens no longer work.`);
    return 0;
  }
  throw new UsageError('usage: airlock agent add|list|remove …');
}

function localActor(): string {
  return `local:${process.env.USER ?? process.env.USERNAME ?? 'user'}`;
}

async function cmdCa(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, {}, false);
  const dataDir = dataDirOf(values);
  if (sub === 'path') {
    const ca = await loadOrCreateCa(ensureDataDir(dataDir).dir);
    out(ca.paths.cert);
    return 0;
  }
  if (sub === 'export') {
    const ca = await loadOrCreateCa(ensureDataDir(dataDir).dir);
    process.stdout.write(ca.certPem);
    return 0;
  }
  if (sub === 'rotate') {
    const paths = ensureDataDir(dataDir);
    const ca = await rotateCa(paths.dir);
    writeTrustBundle(ca);
    withStore(paths, (s) => s.audit.append({ actor: localActor(), action: 'ca.rotated', subject: ca.fingerprint256, details: { notAfter: ca.notAfter.toISOString() } }));
    out(`New Airlock CA ${ca.fingerprint256}; tools must trust ${ca.paths.cert} again. Restart a running gateway to use it.`);
    return 0;
  }
  throw new UsageError('usage: airlock ca path|export|rotate');
}

/** Builds the environment for an agent: mints a token unless one is given. */
async function buildAgentEnv(paths: DataPaths, agent: string, token: string | undefined, label: string, expiresAt: string | null) {
  const gw = runningGateway(paths);
  const ca = await loadOrCreateCa(paths.dir);
  const bundle = existsSync(caPaths(paths.dir).bundle) ? caPaths(paths.dir).bundle : writeTrustBundle(ca);
  if (!existsSync(paths.nodePreload)) writeNodePreload(paths.nodePreload);
  const minted = token ?? newAgentToken();
  withStore(paths, (s) => {
    if (!s.agents.get(agent)) throw new AirlockError('not-found', `no agent named "${agent}"; create it with \`airlock agent add ${agent}\``);
    if (token) {
      if (!s.agents.findByToken(agent, hashToken(token))) throw new AirlockError('unauthorized', `that token does not belong to agent "${agent}"`);
    } else s.agents.addToken(agent, hashToken(minted), label, expiresAt);
  });
  return {
    token: minted,
    env: agentEnv({
      proxyUrl: gw.proxyUrl,
      agent,
      token: minted,
      caPath: ca.paths.cert,
      bundlePath: bundle,
      nodePreloadPath: paths.nodePreload,
      existingNodeOptions: process.env.NODE_OPTIONS,
    }),
  };
}

async function cmdEnv(argv: string[]): Promise<number> {
  const { values } = parse(argv, { agent: { type: 'string' }, token: { type: 'string' } }, false);
  if (typeof values.agent !== 'string') throw new UsageError('usage: airlock env --agent NAME [--token TOKEN]');
  const paths = ensureDataDir(dataDirOf(values));
  const { env } = await buildAgentEnv(paths, values.agent, values.token as string | undefined, `env ${new Date().toISOString()}`, null);
  process.stdout.write(exportLines(env));
  return 0;
}

async function cmdRun(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const cmd = dash === -1 ? [] : argv.slice(dash + 1);
  const { values } = parse(own, { agent: { type: 'string' } }, false);
  if (typeof values.agent !== 'string' || cmd.length === 0) throw new UsageError('usage: airlock run --agent NAME -- CMD [ARGS...]');
  const paths = ensureDataDir(dataDirOf(values));
  // A token for this run only: removed when the command exits (and expiring in a week should we crash).
  const expires = new Date(Date.now() + 7 * 24 * 3600_000).toISOString();
  const { token, env } = await buildAgentEnv(paths, values.agent, undefined, `run ${cmd[0]} (pid ${process.pid})`, expires);
  const cleanup = () => {
    try {
      withStore(paths, (s) => s.agents.removeToken(hashToken(token)));
    } catch {
      /* the token expires by itself */
    }
  };
  return await new Promise<number>((resolveCode) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env: { ...process.env, ...env } });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      process.stderr.write(`airlock: cannot run ${cmd[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`);
      resolveCode(127);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      cleanup();
      resolveCode(code ?? (signal ? 128 + (({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9 } as Record<string, number>)[signal] ?? 1) : 1));
    });
  });
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: cmdServe,
  agent: cmdAgent,
  ca: cmdCa,
  env: cmdEnv,
  run: cmdRun,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === 'version') {
    out(VERSION);
    return 0;
  }
  const fn = COMMANDS[cmd];
  if (!fn) {
    process.stderr.write(`airlock: unknown command "${cmd}". Run \`airlock help\`.\n`);
    return 2;
  }
  try {
    return await fn(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`airlock ${cmd}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof AirlockError || e instanceof CaError) {
      process.stderr.write(`airlock ${cmd}: ${e.message}\n`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`airlock ${cmd}: ${err.message ?? String(e)}${process.env.AIRLOCK_DEBUG ? '\n' + err.stack : ' (set AIRLOCK_DEBUG=1 for details)'}\n`);
    return 1;
  }
}

export { dataPaths };
