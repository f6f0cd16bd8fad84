import { tuneForGateway } from './runtime';
import { closeSync, createReadStream, existsSync, fchmodSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CaError, caPaths, errnoOf, loadOrCreateCa, rotateCa, writeTrustBundle } from '../certs';
import { writeFileAtomic } from '../certs/fsutil';
import { hashToken, newAgentToken } from './agents/tokens';
import { dataPaths, defaultDataDir, type DataPaths } from './config/paths';
import { OptionsSchema } from './config/options';
import { pidAlive, proxyListening, readRuntime, type RuntimeInfo } from './config/runtime-file';
import { AirlockError } from './contract/errors';
import { mergeAgentEnv, runAgentCommand } from './env/run-agent';
import { localActor } from './config/local-user';
import { agentEnv, detectShell, loadHint, shellLines, shellNamed, wgetrcText } from './env/agent-env';
import { writeNodePreload } from './env/node-preload';
import { consoleBuilt, defaultStaticDir, ensureDataDir, hasPassword, reviewView, startAirlock, VERSION } from './service';
import { openStore, sessionView, type Store, type ExchangeRecord, type ExchangeFilter, exportAudit, matchExports, parseAuditExport, parseHeadOption, verifyEvents, type ExportDigest } from './store';
import { createHttpApiClient, followEvents } from './console/client';
import { reviewLine, reviewText } from './cli/format-review';
import { escapeJsonText, EXCHANGE_CSV_HEADER, exchangeCsvRow, exchangeDetail, exchangeFollowHeader, exchangeFollowLine, exchangeJson, exchangesTable, heldBodyFile, plain, safeJson, sessionsTable, shortBytes } from './cli/format-record';
import { harComment, HarWriter } from './store/har';
import { CredentialStore, FileKeyProvider, normaliseHostKey } from './credentials/credential-store';
import { MAX_LIST_LIMIT, type AirlockApi } from './contract/api';
import { parseTimeBound } from './contract/time';
import { EXCHANGE_KINDS, VERDICTS, type ExchangeKind, type ExchangeView, type ReviewState, type SessionView, type Verdict } from './contract/views';

const ENV_USAGE = 'airlock env --agent NAME [--token TOKEN] [--shell sh|fish|powershell] [--json]';

const USAGE = `airlock ${VERSION}: holds AI agents' git pushes and risky API calls for review.

Usage:
  airlock serve [--proxy-port N] [--console-port N|off] [--upstream-ca FILE]... [--upstream-proxy URL]
                [--review-timeout 15m] [--json]
  airlock status [--json]                             whether a gateway runs here, its URLs, pending reviews
  airlock agent add NAME [--group G]... [--json]      create an agent; prints its token once
  airlock agent list [--json]
  airlock agent remove NAME
  airlock agent tokens NAME [--json]                  the agent's tokens (agent add, each airlock env, running runs)
  airlock agent revoke NAME TOKEN-ID                  one of them stops working
  airlock env --agent NAME [--token TOKEN] [--shell sh|fish|powershell] [--json]
                                                       lines that route a shell through Airlock (shell: from $SHELL)
  airlock run --agent NAME -- CMD [ARGS...]            run a command routed through Airlock
  airlock ca path | export | rotate
  airlock reviews [--status pending|approved|denied|expired|interrupted] [--json]
  airlock show ID [--json]                             a review with its full diff
  airlock approve ID [--reason TEXT]
  airlock deny ID --reason TEXT
  airlock sessions [--agent NAME] [--limit N] [--before SESSION] [--json]
                                                       agent connections, newest first
  airlock exchanges [--session ID] [--agent NAME] [--host HOST] [--kind KIND] [--decision allow|review|deny]
                    [--limit N] [--before ID | --follow] [--json]
                                                       recorded requests, newest first (KIND: ${EXCHANGE_KINDS.join("|")});
                                                       --follow (-f): the last 10, then each one as the gateway records it
  airlock exchanges export [--since DATE] [--until DATE] [--agent NAME] [--session ID] [--format jsonl|csv|har] [--out FILE]
                                                       every exchange, oldest first, for auditors (audited);
                                                       har: with headers and bodies, for HAR viewers and replay
  airlock exchange ID [--json | --body request|response]
                                                       one exchange in full: headers and bodies (--body: raw bytes)
  airlock credential set HOST[:PORT] [--username NAME] [--bearer]   reads the secret from stdin
  airlock credential list | remove HOST[:PORT]
  airlock audit export [--format jsonl|csv] [--since DATE] [--out FILE]
  airlock audit verify [--file EXPORT [--partial]] [--format jsonl|csv] [--head HASH] [--export FILE]...
                                                       check the chain; --export: FILE is an export it recorded, unchanged

Every command takes --data-dir DIR (or AIRLOCK_DATA_DIR); default: ${defaultDataDir()}
`;

/** `airlock CMD --help`: CMD's lines of the usage; for serve also every option of config.yaml. */
function commandHelp(cmd: string): string {
  const lines = USAGE.split('\n');
  const mine: string[] = [];
  let inCmd = false;
  for (const l of lines) {
    if (/^ {2}airlock /.test(l)) inCmd = l.startsWith(`  airlock ${cmd} `) || l === `  airlock ${cmd}`;
    else if (!/^ {4,}/.test(l)) inCmd = false;
    if (inCmd) mine.push(l);
  }
  mine.push('', `Every command takes --data-dir DIR (or AIRLOCK_DATA_DIR); default: ${defaultDataDir()}`);
  if (cmd === 'serve') {
    mine.push('', 'Options in <data-dir>/config.yaml (flags override them):');
    for (const [name, schema] of Object.entries(OptionsSchema.shape)) mine.push(`  ${name}: ${(schema as { description?: string }).description ?? ''}`);
  }
  return mine.join('\n');
}

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
  const given = v['data-dir'];
  if (given === '') throw new UsageError('--data-dir is empty (an unset variable?): name a directory');
  const dir = typeof given === 'string' ? resolve(given) : defaultDataDir();
  // The path goes into NODE_OPTIONS and config files of agent runs: no control characters.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(dir)) throw new UsageError(`the data directory ${JSON.stringify(dir)} has a control character in its path; choose another`);
  return dir;
}

function intOption(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number (0-65535), got "${v}"`);
  return n;
}

/** `90s`, `15m`, `2h` or a number of minutes. */
export function parseDuration(v: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new UsageError(`--${name} must be a duration such as 90s, 15m or 2h, got "${v}"`);
  const n = Number(m[1]);
  const ms = n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2] ?? 'm']!;
  if (ms < 1000) throw new UsageError(`--${name} must be at least 1s`);
  return Math.round(ms);
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

/** The gateway running on this data dir, or a clear error. */
export async function runningGateway(paths: DataPaths): Promise<RuntimeInfo> {
  const info = readRuntime(paths);
  if (!info) throw new AirlockError('unavailable', `no Airlock gateway is running for ${paths.dir}; start one with \`airlock serve\``);
  if (!pidAlive(info.pid) || !(await proxyListening(info))) {
    throw new AirlockError('unavailable', `the Airlock gateway for ${paths.dir} is not running (stale pid ${info.pid}); start one with \`airlock serve\``);
  }
  return info;
}

async function cmdServe(argv: string[]): Promise<number> {
  tuneForGateway();
  const { values } = parse(argv, {
    'proxy-port': { type: 'string' },
    'console-port': { type: 'string' },
    'upstream-ca': { type: 'string', multiple: true },
    'upstream-proxy': { type: 'string' },
    'review-timeout': { type: 'string' },
    json: { type: 'boolean' },
  }, false);
  const rt = values['review-timeout'] as string | undefined;
  const reviewTimeoutMs = rt === undefined ? undefined : parseDuration(rt, 'review-timeout');
  const dataDir = dataDirOf(values);
  const consoleRaw = values['console-port'];
  let onStop: ((sig: string) => void) | null = null;
  const handler = (sig: NodeJS.Signals) => onStop?.(sig);
  // While it starts, a signal ends the process at once (Node's default): a start that hangs (a data
  // dir on a file system that never answers) must not leave a process SIGTERM cannot stop.
  const running = await startAirlock({
    dataDir,
    proxyPort: intOption(values['proxy-port'], 'proxy-port'),
    consolePort: consoleRaw === 'off' ? null : intOption(consoleRaw, 'console-port'),
    upstreamCa: (values['upstream-ca'] as string[] | undefined)?.map((f) => resolve(f)),
    upstreamProxy: values['upstream-proxy'] as string | undefined,
    reviewTimeoutMs,
  });
  // Signal handlers go in before anything is printed: a supervisor may send SIGTERM the moment
  // it reads the JSON line, and without a handler that would kill the process uncleanly.
  // SIGHUP: the terminal it runs in was closed (on Windows also the console window); SIGBREAK: Ctrl-Break.
  for (const sig of STOP_SIGNALS) process.on(sig, handler);
  const upArg = values['upstream-proxy'];
  if (typeof upArg === 'string' && hasPassword(upArg)) {
    process.stderr.write("airlock: warning: the upstream proxy's password on the command line is visible to other users of this machine (ps); " +
      'put upstreamProxy in <data-dir>/config.yaml (mode 0600) instead\n');
  }
  const info = {
    proxyUrl: running.proxyUrl,
    consoleUrl: running.consoleUrl,
    consoleOpenUrl: running.consoleUrl ? `${running.consoleUrl}/#token=${running.adminToken}` : null,
    caPath: running.caPath,
    bundlePath: running.bundlePath,
    dataDir: running.dataDir,
    pid: process.pid,
  };
  if (info.consoleUrl && !consoleBuilt(defaultStaticDir())) {
    // A checkout installed but never built: the console would answer "not built" (a blank page, before).
    process.stderr.write('airlock: the web console is not built yet, so it shows only "not built": run `npm run build` once (npm start does it for you)\n');
  }
  if (values.json) out(JSON.stringify(info));
  else {
    out(`Airlock ${VERSION} is running.`);
    out(`  proxy:    ${info.proxyUrl}   (agents: airlock run --agent NAME -- CMD)`);
    out(`  console:  ${info.consoleOpenUrl ?? 'off'}`);
    out(`  CA:       ${info.caPath}`);
    out(`  data dir: ${info.dataDir}`);
    const up = running.service.upstreamProxy;
    if (up) out(`  upstream: through the proxy ${up.display}${up.noProxy.length ? ` (direct: ${up.noProxy.join(', ')})` : ''}`);
  }
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    onStop = (sig: string) => {
      if (stopping) return; // a repeated signal does not cut the clean shutdown short
      stopping = true;
      running.service.log.info(`received ${sig}, shutting down`);
      running.service.close().finally(() => resolveStop());
    };
  });
  for (const sig of STOP_SIGNALS) process.off(sig, handler);
  return 0;
}

/** The signals after which `airlock serve` closes the record and stops. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', ...(process.platform === 'win32' ? ['SIGBREAK' as const] : [])];

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
  if (sub === 'tokens') {
    // Every token that works for the agent: the one `agent add` printed, one per `airlock env` (they do
    // not expire), and those of runs still going (removed when the run ends). By the id the audit log uses.
    const name = positionals[0];
    if (!name) throw new UsageError('usage: airlock agent tokens NAME [--json]');
    const tokens = withStore(paths, (s) => {
      if (!s.agents.get(name)) throw new AirlockError('not-found', `no agent named "${name}"`);
      return s.agents.tokens(name).map((t) => ({ id: t.hash.slice(0, 12), label: t.label, createdAt: t.createdAt, expiresAt: t.expiresAt }));
    });
    if (values.json) out(JSON.stringify(tokens));
    else if (tokens.length === 0) out(`agent "${name}" has no tokens`);
    else for (const t of tokens) out(`${t.id}\t${t.createdAt}\t${t.expiresAt ? `expires ${t.expiresAt}` : 'no expiry'}\t${plain(t.label)}`);
    return 0;
  }
  if (sub === 'revoke') {
    const [name, id] = positionals;
    if (!name || !id) throw new UsageError('usage: airlock agent revoke NAME TOKEN-ID (the id `airlock agent tokens NAME` shows)');
    const revoked = withStore(paths, (s) => {
      if (!s.agents.get(name)) throw new AirlockError('not-found', `no agent named "${name}"`);
      const matches = /^[0-9a-f]{6,64}$/i.test(id) ? s.agents.tokens(name).filter((t) => t.hash.startsWith(id.toLowerCase())) : [];
      if (matches.length === 0) throw new AirlockError('not-found', `agent "${name}" has no token with id ${plain(id)} (see \`airlock agent tokens ${name}\`)`);
      if (matches.length > 1) throw new UsageError(`${plain(id)} names ${matches.length} tokens of agent "${name}"; give more of the id`);
      const t = matches[0]!;
      s.agents.removeToken(t.hash);
      s.audit.append({ actor: localActor(), action: 'agent.token-revoked', subject: name, details: { for: t.label, token: t.hash.slice(0, 12), by: 'agent revoke' } });
      return t;
    });
    out(`Token ${revoked.hash.slice(0, 12)} of agent "${name}" revoked (${plain(revoked.label)}); requests with it are refused within seconds, open connections too.`);
    return 0;
  }
  throw new UsageError('usage: airlock agent add|list|remove|tokens|revoke …');
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

/**
 * Builds the environment for an agent: mints a token unless one is given. A minted token is an audit
 * event (`agent.token-issued`: who, for what, the first 12 hex digits of its SHA-256), so the
 * audit log shows every run and shell that spoke as an agent, and when.
 */
async function buildAgentEnv(paths: DataPaths, agent: string, token: string | undefined, label: string, expiresAt: string | null) {
  const gw = await runningGateway(paths);
  const ca = await loadOrCreateCa(paths.dir);
  const bundle = existsSync(caPaths(paths.dir).bundle) ? caPaths(paths.dir).bundle : writeTrustBundle(ca);
  if (!existsSync(paths.nodePreload)) writeNodePreload(paths.nodePreload);
  // Atomic: runs that start together rewrite it while wget in another run may be reading it.
  writeFileAtomic(paths.wgetrc, wgetrcText(bundle), 0o644);
  const minted = token ?? newAgentToken();
  withStore(paths, (s) => {
    if (!s.agents.get(agent)) throw new AirlockError('not-found', `no agent named "${agent}"; create it with \`airlock agent add ${agent}\``);
    if (token) {
      if (!s.agents.findByToken(agent, hashToken(token))) throw new AirlockError('unauthorized', `that token does not belong to agent "${agent}"`);
    } else {
      const hash = hashToken(minted);
      s.agents.addToken(agent, hash, label, expiresAt);
      s.audit.append({ actor: localActor(), action: 'agent.token-issued', subject: agent, details: { for: label, token: hash.slice(0, 12), expiresAt, cwd: process.cwd() } });
    }
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
      wgetrcPath: paths.wgetrc,
      existingNodeOptions: process.env.NODE_OPTIONS,
      gitRewrites: sshRewrites(paths),
    }),
  };
}

/**
 * SSH remotes would bypass an HTTP proxy: for every host with a stored
 * credential, rewrite its SSH URL forms to HTTPS so pushes go through Airlock.
 */
export function sshRewrites(paths: DataPaths): Array<{ base: string; insteadOf: string }> {
  const creds = new CredentialStore(paths.credentials, new FileKeyProvider(paths.credentialsKey));
  const out: Array<{ base: string; insteadOf: string }> = [];
  for (const c of creds.list()) {
    const host = c.host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const base = `https://${c.host}/`;
    out.push({ base, insteadOf: `git@${host}:` }, { base, insteadOf: `ssh://git@${host}/` });
  }
  return out;
}

async function cmdEnv(argv: string[]): Promise<number> {
  const { values } = parse(argv, { agent: { type: 'string' }, token: { type: 'string' }, shell: { type: 'string' }, json: { type: 'boolean' } }, false);
  if (typeof values.agent !== 'string') throw new UsageError(`usage: ${ENV_USAGE}`);
  let shell = detectShell(process.env, process.platform);
  if (typeof values.shell === 'string') {
    const named = shellNamed(values.shell);
    if (!named) throw new UsageError(`unknown shell "${values.shell}" (use one of: sh, bash, zsh, fish, powershell, pwsh)`);
    shell = named;
  }
  const paths = ensureDataDir(dataDirOf(values));
  const { env } = await buildAgentEnv(paths, values.agent, values.token as string | undefined, `env ${new Date().toISOString()}`, null);
  process.stdout.write(values.json === true ? JSON.stringify(env) + '\n' : shellLines(env, shell));
  if (values.json !== true && process.stdout.isTTY) {
    // Printed to a terminal rather than loaded: say how to load it (stderr, so a pipe never gets it).
    process.stderr.write(`# load it with: ${loadHint(shell, `airlock env --agent ${values.agent}`)}\n`);
  }
  return 0;
}

async function cmdRun(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const cmd = dash === -1 ? [] : argv.slice(dash + 1);
  // `airlock run --agent claude curl -s …`: the command goes after `--`, so that its options stay its own.
  const afterDash = new UsageError('put the command after `--`: airlock run --agent NAME -- CMD [ARGS...]');
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(own, { agent: { type: 'string' } }, true);
  } catch (e) {
    throw dash === -1 ? afterDash : e;
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw afterDash;
  if (typeof values.agent !== 'string' || cmd.length === 0) throw new UsageError('usage: airlock run --agent NAME -- CMD [ARGS...]');
  const paths = ensureDataDir(dataDirOf(values));
  // A token for this run only: removed when the command exits (and expiring in a week should we crash).
  const expires = new Date(Date.now() + 7 * 24 * 3600_000).toISOString();
  const label = `run ${cmd[0]} (pid ${process.pid})`;
  const { token, env } = await buildAgentEnv(paths, values.agent, undefined, label, expires);
  const agent = values.agent;
  // runAgentCommand settles once, when the command has ended (or could not start): the run's token goes then.
  const r = await runAgentCommand(cmd[0]!, cmd.slice(1), mergeAgentEnv(process.env, env));
  try {
    withStore(paths, (s) => {
      const hash = hashToken(token);
      s.agents.removeToken(hash);
      s.audit.append({ actor: localActor(), action: 'agent.token-revoked', subject: agent, details: { for: label, token: hash.slice(0, 12), exit: r.ended } });
    });
  } catch {
    /* the token expires by itself */
  }
  if (r.startError) {
    const e = r.startError;
    process.stderr.write(`airlock: cannot run ${cmd[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`);
  }
  return r.status;
}

/** The console of the gateway running on this data dir and the 0600 admin token, or a clear error (`why`: what needs it). */
async function consoleAccess(paths: DataPaths, why = ''): Promise<{ consoleUrl: string; token: string }> {
  const gw = await runningGateway(paths);
  if (!gw.consoleUrl) throw new AirlockError('unavailable', `the running gateway has its console API turned off (--console-port off)${why}`);
  try {
    return { consoleUrl: gw.consoleUrl, token: readFileSync(paths.adminToken, 'utf8').trim() };
  } catch {
    throw new AirlockError('unauthorized', `cannot read the admin token at ${paths.adminToken}`);
  }
}

/** The console API of the gateway running on this data dir, authenticated with the 0600 admin token. */
async function consoleApi(paths: DataPaths): Promise<AirlockApi> {
  const { consoleUrl, token } = await consoleAccess(paths);
  return createHttpApiClient(consoleUrl, token);
}

const STATES = ['pending', 'approved', 'denied', 'expired', 'interrupted'];

async function cmdReviews(argv: string[]): Promise<number> {
  const { values } = parse(argv, { status: { type: 'string' }, json: { type: 'boolean' } }, false);
  const status = values.status as string | undefined;
  if (status && !STATES.includes(status)) throw new UsageError(`--status must be one of ${STATES.join(', ')}`);
  const list = await readReviews(values, (api) => api.listReviews({ state: status as ReviewState | undefined }),
    (s) => s.reviews.list(status ? { state: status as ReviewState } : {}).map(reviewView));
  if (values.json) out(safeJson(list));
  else if (list.length === 0) out(status ? `no ${status} reviews` : 'no reviews yet');
  else for (const r of list) out(reviewLine(r));
  return 0;
}

/**
 * `airlock status`: whether a gateway runs for this data dir, where, and what waits. Exit 0 when it
 * runs, 1 when it does not (one line), so scripts can test it. The console's open URL carries the
 * admin token: it is printed only outside an agent's environment (an agent does not decide reviews).
 */
async function cmdStatus(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' } }, false);
  const paths = dataPaths(dataDirOf(values));
  const gw = await runningGateway(paths);
  // An agent's shell reaches the console only through the proxy, which refuses it (builtin:deny-airlock-itself):
  // there it shows what the runtime file says, without counts.
  const agentShell = Boolean(process.env.AIRLOCK_AGENT);
  let status: Awaited<ReturnType<AirlockApi['getStatus']>> | null = null;
  if (gw.consoleUrl && !agentShell) status = await (await consoleApi(paths)).getStatus();
  let openUrl: string | null = null;
  if (gw.consoleUrl && !agentShell) {
    try { openUrl = `${gw.consoleUrl}/#token=${readFileSync(paths.adminToken, 'utf8').trim()}`; } catch { /* not readable: the plain URL is shown */ }
  }
  const agents = withStore(paths, (s) => s.agents.list().length);
  const info = {
    running: true,
    pid: gw.pid,
    version: status?.version ?? null,
    startedAt: status?.startedAt ?? null,
    proxyUrl: gw.proxyUrl,
    consoleUrl: gw.consoleUrl,
    consoleOpenUrl: openUrl,
    caPath: status?.caPath ?? caPaths(paths.dir).cert,
    dataDir: paths.dir,
    agents,
    exchanges: status?.counts.exchanges ?? null,
    pendingReviews: status?.counts.pendingReviews ?? null,
    recording: status?.recording ?? null,
    disk: status?.disk ?? null,
    upstreamProxy: status?.upstreamProxy ?? null,
  };
  if (values.json) {
    out(safeJson(info));
    return 0;
  }
  const since = info.startedAt ? `, since ${info.startedAt.replace(/\.\d{3}Z$/, 'Z')}` : '';
  out(`Airlock${info.version ? ` ${info.version}` : ''} is running (pid ${info.pid}${since}).`);
  out(`  proxy:    ${info.proxyUrl}`);
  out(`  console:  ${openUrl ?? gw.consoleUrl ?? 'off'}`);
  out(`  CA:       ${info.caPath}`);
  out(`  data dir: ${info.dataDir}`);
  out(`  agents:   ${agents}`);
  if (status) {
    out(`  recorded: ${status.counts.exchanges} exchanges`);
    out(`  pending:  ${status.counts.pendingReviews} review${status.counts.pendingReviews === 1 ? '' : 's'}${status.counts.pendingReviews > 0 ? ' (airlock reviews)' : ''}`);
    const r = status.recording;
    out(`  record:   ${r.state === 'failing'
      ? `FAILING since ${r.since.replace(/\.\d{3}Z$/, 'Z')}: ${r.error}. Requests are refused (503) until the database takes writes; ${r.held} held in memory.`
      : r.state}`);
    if (status.upstreamProxy) {
      const np = status.upstreamProxy.noProxy;
      out(`  upstream: through the proxy ${status.upstreamProxy.proxy}${np.length ? ` (direct: ${np.join(', ')})` : ''}`);
    }
    if (status.disk) {
      out(`  disk:     ${shortBytes(status.disk.freeBytes)} free${status.disk.low
        ? ' - LOW: when the disk holding the record is full, Airlock refuses every request until space is freed' : ''}`);
    }
  }
  return 0;
}

async function cmdShow(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const id = positionals[0];
  if (!id) throw new UsageError('usage: airlock show ID');
  const rid = id.replace(/^#/, '');
  const r = await readReviews(values, (api) => api.getReview({ id: rid }), (s) => {
    const rec = s.reviews.get(rid);
    if (!rec) throw new AirlockError('not-found', `no review with id ${rid}`);
    return reviewView(rec);
  });
  process.stdout.write(values.json ? safeJson(r) + '\n' : reviewText(r));
  return 0;
}

/**
 * Reviews from the running gateway's API, or, when none runs, from the record itself: an auditor
 * reads past decisions from a copy of a data dir without starting a gateway (which would write to
 * it: a start appends events and marks pending reviews interrupted).
 */
async function readReviews<T>(values: Values, live: (api: AirlockApi) => Promise<T>, offline: (s: Store) => T): Promise<T> {
  const paths = dataPaths(dataDirOf(values));
  let api: AirlockApi | null = null;
  try {
    api = await consoleApi(paths);
  } catch (e) {
    if (!(e instanceof AirlockError) || e.code !== 'unavailable' || !existsSync(paths.db)) throw e;
  }
  if (api) return live(api);
  process.stderr.write('airlock: no gateway is running: read from the record (a review shown pending was left so by a gateway that stopped; the next start marks it interrupted)\n');
  return withStore(recordPaths(values), offline);
}

async function cmdDecide(argv: string[], approve: boolean): Promise<number> {
  const { values, positionals } = parse(argv, { reason: { type: 'string' } });
  const id = positionals[0]?.replace(/^#/, '');
  const reason = values.reason as string | undefined;
  if (!id) throw new UsageError(approve ? 'usage: airlock approve ID [--reason TEXT]' : 'usage: airlock deny ID --reason TEXT');
  if (!approve && !reason?.trim()) throw new UsageError('a denial needs --reason TEXT (the agent sees it in its git output)');
  // `airlock run` / `airlock env` mark an agent's environment: an agent does not decide its own reviews.
  const agent = process.env.AIRLOCK_AGENT;
  if (agent) {
    throw new AirlockError('unauthorized', `this shell routes agent "${plain(agent)}" through Airlock (AIRLOCK_AGENT is set): reviews are decided by a person, from their own shell, the web console or the desktop app`);
  }
  const api = await consoleApi(ensureDataDir(dataDirOf(values)));
  const r = approve ? await api.approveReview({ id, reason }) : await api.denyReview({ id, reason: reason! });
  out(`Review #${r.id} ${r.state} by ${r.decidedBy}${r.reason ? `: ${r.reason}` : ''}.`);
  return 0;
}

/** The record of this data dir, for reading: an error (not a new empty database) when there is none. */
function recordPaths(v: Values): DataPaths {
  const paths = dataPaths(dataDirOf(v));
  if (!existsSync(paths.db)) {
    throw new AirlockError('not-found', `no Airlock record in ${paths.dir} (${paths.db} does not exist; \`airlock serve\` creates it)`);
  }
  return paths;
}

function limitOption(v: unknown): number {
  if (v === undefined) return DEFAULT_PAGE;
  const n = Number(v);
  if (!/^\d+$/.test(String(v)) || n < 1 || n > MAX_LIST_LIMIT) throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIST_LIMIT}, got "${plain(String(v))}"`);
  return n;
}

function oneOf<T extends string>(v: unknown, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly unknown[]).includes(v)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${plain(String(v))}"`);
  return v as T;
}

/** A text filter: present and non-empty. */
function textOption(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} needs a value`);
  return v;
}

const DEFAULT_PAGE = 50;

/** Tells (on stderr, so stdout stays the table or JSON) how to get the next page. */
function nextPageHint(cmd: string, lastId: string): void {
  process.stderr.write(`airlock ${cmd}: more rows are older; add --before ${plain(lastId)} for the next page\n`);
}

async function cmdSessions(argv: string[]): Promise<number> {
  const { values } = parse(argv, { agent: { type: 'string' }, limit: { type: 'string' }, before: { type: 'string' }, json: { type: 'boolean' } }, false);
  const agent = textOption(values.agent, 'agent');
  const before = textOption(values.before, 'before');
  const limit = limitOption(values.limit);
  const { rows, more } = withStore(recordPaths(values), (s) => {
    const rows: SessionView[] = s.sessions.list({ agent, limit, before }).map(sessionView);
    const more = rows.length === limit && s.sessions.list({ agent, limit: 1, before: rows[rows.length - 1]!.id }).length > 0;
    return { rows, more };
  });
  if (values.json) out(safeJson(rows));
  else if (rows.length === 0) out(before ? 'no older sessions' : agent ? `no sessions of agent "${plain(agent)}"` : 'no sessions recorded yet');
  else process.stdout.write(sessionsTable(rows));
  if (more) nextPageHint('sessions', rows[rows.length - 1]!.id);
  return 0;
}

/** A --since/--until value as an ISO time (parseTimeBound: dates are UTC midnight), or a usage error. */
function dateOption(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  const iso = parseTimeBound(String(v));
  if (iso === null) throw new UsageError(`--${name} "${plain(String(v))}" is not a date (use e.g. 2026-11-01 or an ISO time such as 2026-11-01T09:30:00Z)`);
  return iso;
}

/** Opens FILE for writing with mode 0600, also when it already exists with a looser mode. */
function openPrivate(file: string): number {
  let fd: number;
  try {
    fd = openSync(file, 'w', 0o600);
    fchmodSync(fd, 0o600);
  } catch (e) {
    throw new AirlockError('bad-request', `cannot write ${file} (${errnoOf(e)})`);
  }
  return fd;
}

/**
 * `airlock exchanges export`: every recorded exchange (optionally of one agent or session, started in
 * [--since, --until)) as JSON Lines, CSV or HAR, oldest first, written as it is read; audited.
 */
async function cmdExchangesExport(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    since: { type: 'string' }, until: { type: 'string' }, agent: { type: 'string' }, session: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' },
  }, false);
  const outFile = values.out as string | undefined;
  const byExtension = outFile?.toLowerCase().endsWith('.csv') ? 'csv' : outFile?.toLowerCase().endsWith('.har') ? 'har' : 'jsonl';
  const format = oneOf<'jsonl' | 'csv' | 'har'>(values.format, 'format', ['jsonl', 'csv', 'har']) ?? byExtension;
  const q = {
    since: dateOption(values.since, 'since'), until: dateOption(values.until, 'until'), agent: textOption(values.agent, 'agent'), sessionId: textOption(values.session, 'session'),
  };
  const paths = recordPaths(values);
  let fd: number | null = null;
  // The export's digest goes into its audit event: `airlock audit verify --export FILE` shows later
  // that a file is byte for byte what was exported.
  const digest = createHash('sha256');
  let bytes = 0;
  const write = async (chunk: string) => {
    digest.update(chunk, 'utf8');
    bytes += Buffer.byteLength(chunk, 'utf8');
    if (fd !== null) writeSync(fd, chunk);
    else await new Promise<void>((res, rej) => process.stdout.write(chunk, (e) => (e ? rej(e) : res())));
  };
  let count = 0;
  const store = openStore(paths.db);
  try {
    if (q.sessionId !== undefined && !store.sessions.get(q.sessionId)) throw new UsageError(`no session "${plain(q.sessionId)}" in the record (airlock sessions lists them)`);
    if (outFile) fd = openPrivate(outFile);
    let buf = '';
    const rows = (format === 'har' ? store.exchanges.records(q) : store.exchanges.iterate(q)) as IterableIterator<ExchangeView | ExchangeRecord>;
    const har = format === 'har' ? new HarWriter({ name: 'Airlock', version: VERSION }, (id) => store.sessions.get(id), harComment(q, new Date()), escapeJsonText) : null;
    buf = format === 'csv' ? EXCHANGE_CSV_HEADER + '\r\n' : har ? har.head() : '';
    for (const x of rows) {
      buf += har ? har.entry(x as ExchangeRecord) : format === 'csv' ? exchangeCsvRow(x as ExchangeView) : safeJson(x) + '\n';
      count++;
      if (buf.length > 256 * 1024) {
        await write(buf);
        buf = '';
      }
    }
    if (har) buf += har.tail();
    await write(buf);
    if (fd !== null) closeSync(fd);
    fd = null;
    store.audit.append({
      actor: localActor(), action: 'exchanges.exported', subject: format,
      details: { count, since: q.since ?? null, until: q.until ?? null, agent: q.agent ?? null, ...(q.sessionId !== undefined ? { session: q.sessionId } : {}), out: outFile ?? 'stdout', sha256: digest.digest('hex'), bytes },
    });
  } finally {
    if (fd !== null) closeSync(fd);
    store.close();
  }
  if (outFile) process.stderr.write(`${count} exchange${count === 1 ? '' : 's'} written to ${outFile}\n`);
  return 0;
}

async function cmdExchanges(argv: string[]): Promise<number> {
  if (argv[0] === 'export') return cmdExchangesExport(argv.slice(1));
  const { values } = parse(argv, {
    session: { type: 'string' },
    agent: { type: 'string' },
    host: { type: 'string' },
    kind: { type: 'string' },
    decision: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
    json: { type: 'boolean' },
    follow: { type: 'boolean', short: 'f' },
  }, false);
  // Hosts are recorded lower-case, IPv6 without brackets, the port apart: `--host localhost:9443`
  // (as the console shows it) filters by the name, and says the port is not.
  let hostFilter = textOption(values.host, 'host')?.toLowerCase();
  const withPortGiven = hostFilter === undefined ? null : /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(hostFilter);
  if (withPortGiven) {
    hostFilter = withPortGiven[1];
    process.stderr.write(`airlock: --host filters by host name: every port of ${withPortGiven[1]} is listed, not only ${withPortGiven[2]}\n`);
  }
  const filter = {
    sessionId: textOption(values.session, 'session'),
    agent: textOption(values.agent, 'agent'),
    host: hostFilter?.replace(/^\[(.*)\]$/, '$1'),
    kind: oneOf<ExchangeKind>(values.kind, 'kind', EXCHANGE_KINDS),
    verdict: oneOf<Verdict>(values.decision, 'decision', VERDICTS),
  };
  const before = textOption(values.before, 'before');
  if (before !== undefined && !/^[1-9][0-9]{0,15}$/.test(before)) {
    throw new UsageError(`--before must be an exchange id (a positive whole number), got "${plain(before)}"`);
  }
  if (values.follow) {
    if (before !== undefined) throw new UsageError('--follow shows the newest exchanges and those to come: --before does not go with it');
    return followExchanges(values, filter, values.limit === undefined ? FOLLOW_BACKLOG : limitOption(values.limit));
  }
  const limit = limitOption(values.limit);
  const { rows, more, unknownAgent } = withStore(recordPaths(values), (s) => {
    const rows = s.exchanges.list({ ...filter, limit, before });
    const more = rows.length === limit && s.exchanges.list({ ...filter, limit: 1, before: rows[rows.length - 1]!.id }).length > 0;
    // A removed agent's history stays listed; a name never used is most likely a typo.
    const unknownAgent = rows.length === 0 && filter.agent !== undefined && !s.agents.get(filter.agent) && s.exchanges.list({ agent: filter.agent, limit: 1 }).length === 0;
    return { rows, more, unknownAgent };
  });
  const filtered = Object.values(filter).some((v) => v !== undefined);
  if (values.json) out(safeJson(rows));
  else if (unknownAgent) out(`no agent named "${plain(filter.agent!)}" has exchanges in this record (\`airlock agent list\` lists the agents)`);
  else if (rows.length === 0) out(before ? 'no older exchanges' + (filtered ? ' match these filters' : '') : filtered ? 'no exchanges match these filters' : 'no exchanges recorded yet');
  else process.stdout.write(exchangesTable(rows));
  if (more) nextPageHint('exchanges', rows[rows.length - 1]!.id);
  return 0;
}

/** Rows `airlock exchanges --follow` shows from the record before the live ones (as `tail -f` shows 10 lines). */
const FOLLOW_BACKLOG = 10;

/**
 * `airlock exchanges --follow`: the newest recorded exchanges that match, then each one the running gateway
 * records, as it records it (the console's event stream), until Ctrl-C (exit 0) or the gateway stops (exit 1,
 * one line). One line each (`--json`: one JSON object per line), oldest first, filtered as the list is.
 */
async function followExchanges(values: Values, filter: ExchangeFilter, backlog: number): Promise<number> {
  const paths = recordPaths(values);
  const { consoleUrl, token } = await consoleAccess(paths, ': --follow reads its live events there');
  const matches = (x: ExchangeView) => (filter.agent === undefined || x.agent === filter.agent) && (filter.host === undefined || x.host === filter.host)
    && (filter.kind === undefined || x.kind === filter.kind) && (filter.verdict === undefined || x.decision?.verdict === filter.verdict)
    && (filter.sessionId === undefined || x.sessionId === filter.sessionId);
  const print = (x: ExchangeView) => process.stdout.write(values.json ? safeJson(x) + '\n' : exchangeFollowLine(x));
  // The backlog is asked for once the stream is open; an exchange both in it and in the stream is shown once.
  let shown = new Set<string>();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  try {
    const ended = await followEvents(consoleUrl, token, (event) => {
      if (event.type === 'exchange' && matches(event.exchange) && !shown.has(event.exchange.id)) print(event.exchange);
    }, stop.signal, async () => {
      // From the gateway, not the file: it writes its last batch first (up to 100 ms of exchanges not yet
      // in the file, whose events went out before this stream opened).
      const rows = (await createHttpApiClient(consoleUrl, token).listExchanges({
        agent: filter.agent, host: filter.host, kind: filter.kind, decision: filter.verdict, sessionId: filter.sessionId, limit: backlog,
      })).reverse();
      if (!values.json) process.stdout.write(exchangeFollowHeader());
      for (const x of rows) print(x);
      shown = new Set(rows.map((x) => x.id));
    });
    if (ended === 'ended') {
      // The gateway also cuts a reader that falls far behind (a paused pager): then it still runs.
      const still = await runningGateway(paths).then(() => true, () => false);
      throw new AirlockError('unavailable', still
        ? 'the gateway closed the event stream (it cuts a reader that falls too far behind); follow again'
        : 'the gateway stopped (its event stream ended); start it again and follow again');
    }
    return 0;
  } finally {
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
  }
}

async function cmdExchange(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, body: { type: 'string' } });
  const id = positionals[0]?.replace(/^#/, '');
  if (!id || positionals.length > 1) throw new UsageError('usage: airlock exchange ID [--json | --body request|response]');
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw new UsageError(`the exchange id is a positive whole number (see \`airlock exchanges\`), got "${plain(id)}"`);
  const which = oneOf<'request' | 'response'>(values.body, 'body', ['request', 'response']);
  if (which && values.json) throw new UsageError('--body and --json do not go together');
  const paths = recordPaths(values);
  const x = withStore(paths, (s) => s.exchanges.get(id));
  if (!x) throw new AirlockError('not-found', `no exchange ${id} in the record (it may have been pruned after retentionDays)`);
  if (which) {
    // A held push's bytes are kept with its review (`pushes/<sha256>.body`), not in the record.
    const held = heldBodyFile(x, which, paths.dir, existsSync);
    if (held && 'pruned' in held) throw new AirlockError('not-found', held.pruned);
    if (held) {
      await pipeline(createReadStream(held.path), process.stdout, { end: false });
      return 0;
    }
    const body = which === 'request' ? x.requestBody : x.responseBody;
    const bytes = which === 'request' ? x.requestBytes : x.responseBytes;
    if (!body && bytes > 0) {
      const sha = which === 'request' ? x.requestBodySha256 : x.responseBodySha256;
      throw new AirlockError('not-found', `the ${which} body of exchange ${id} was not kept (${bytes} bytes${sha ? `, sha256 ${sha}` : ''})`);
    }
    const complete = which === 'request' ? x.requestBodyComplete : x.responseBodyComplete;
    if (body && !complete) process.stderr.write(`airlock exchange: only the first ${body.length} of ${bytes} bytes were kept (bodyCaptureBytes)\n`);
    if (body) await new Promise<void>((res, rej) => process.stdout.write(body, (e) => (e ? rej(e) : res())));
    return 0;
  }
  process.stdout.write(values.json ? exchangeJson(x) + '\n' : exchangeDetail(x, { dataDir: paths.dir }));
  return 0;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    process.stderr.write(`Paste the token or password, then press ${process.platform === 'win32' ? 'Ctrl-Z and Enter' : 'Ctrl-D'}: `);
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  // Spaces and line ends around it are the shell's, not the secret's: cmd.exe's `echo TOKEN | …`
  // sends "TOKEN \r\n", a pasted token often ends in a newline (as `gh auth login --with-token` trims).
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** A credential's host key as people read it: with its port, also the default one (`github.com:443`). */
function withPort(key: string): string {
  return /:\d+$/.test(key) && !/^\[[^\]]*\]$/.test(key) ? key : `${key}:443`;
}

async function cmdCredential(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { username: { type: 'string' }, bearer: { type: 'boolean' }, json: { type: 'boolean' } });
  const paths = ensureDataDir(dataDirOf(values));
  const creds = new CredentialStore(paths.credentials, new FileKeyProvider(paths.credentialsKey));
  if (sub === 'set') {
    const host = positionals[0];
    if (!host) throw new UsageError('usage: echo TOKEN | airlock credential set HOST[:PORT] [--username NAME] [--bearer]');
    const secret = await readStdin();
    const c = await creds.set(host, secret, { username: values.username as string | undefined, scheme: values.bearer ? 'bearer' : 'basic' });
    withStore(paths, (s) => s.audit.append({ actor: localActor(), action: 'credential.set', subject: c.host, details: { username: c.username, scheme: c.scheme } }));
    out(`Credential for ${withPort(c.host)} stored (${c.scheme}${c.scheme === 'basic' ? `, user ${c.username}` : ''}). Agents never see it; Airlock injects it upstream over HTTPS to that host and port only.`);
    return 0;
  }
  if (sub === 'list') {
    const list = creds.list();
    if (values.json) out(JSON.stringify(list));
    else if (list.length === 0) out('no credentials stored');
    else for (const c of list) out(`${withPort(c.host)}\t${c.scheme}\t${c.username}`);
    return 0;
  }
  if (sub === 'remove') {
    const host = positionals[0];
    if (!host) throw new UsageError('usage: airlock credential remove HOST[:PORT]');
    // The audit subject is the stored key, as for credential.set (`github.com:443` and `github.com` are one credential).
    const key = normaliseHostKey(host);
    if (!(await creds.remove(key))) throw new AirlockError('not-found', `no credential stored for ${withPort(key)}`);
    withStore(paths, (s) => s.audit.append({ actor: localActor(), action: 'credential.removed', subject: key, details: {} }));
    out(`Credential for ${withPort(key)} removed.`);
    return 0;
  }
  throw new UsageError('usage: airlock credential set|list|remove …');
}

async function cmdAudit(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, {
    format: { type: 'string' }, since: { type: 'string' }, out: { type: 'string' }, file: { type: 'string' }, head: { type: 'string' }, partial: { type: 'boolean' },
    export: { type: 'string', multiple: true },
  }, false);
  const fileArg = values.file as string | undefined;
  const exportFiles = (values.export as string[] | undefined) ?? [];
  if (exportFiles.length > 0 && sub !== 'verify') throw new UsageError('--export is an option of `airlock audit verify`');
  // An existing record only: a mistyped --data-dir must not make an empty one that verifies.
  const paths = sub === 'verify' && fileArg !== undefined ? null : recordPaths(values);
  let head: string | undefined;
  if (values.head !== undefined) {
    if (sub !== 'verify') throw new UsageError('--head is an option of `airlock audit verify`');
    try {
      head = parseHeadOption(String(values.head));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (values.partial && (sub !== 'verify' || fileArg === undefined)) throw new UsageError('--partial is an option of `airlock audit verify --file EXPORT` (an export made with --since)');
  const format = (values.format as string | undefined) ?? (fileArg?.endsWith('.csv') ? 'csv' : 'jsonl');
  if (format !== 'jsonl' && format !== 'csv') throw new UsageError('--format must be jsonl or csv');
  if (sub === 'export') {
    const since = dateOption(values.since, 'since');
    const [text, last] = withStore(paths!, (s) => [exportAudit(s, { format, since }), s.audit.head()] as const);
    if (typeof values.out === 'string') {
      const fd = openPrivate(values.out); // agents' names and hosts: as private as the exchanges export
      try {
        writeSync(fd, text);
      } catch (e) {
        throw new AirlockError('bad-request', `cannot write ${values.out} (${errnoOf(e)})`);
      } finally {
        closeSync(fd);
      }
    } else process.stdout.write(text);
    // Recorded once the export exists (a failed write is no export); the export itself ends before this event.
    withStore(paths!, (s) => s.audit.append({ actor: localActor(), action: 'audit.exported', subject: format,
      details: { since: since ?? null, out: (values.out as string | undefined) ?? 'stdout', sha256: createHash('sha256').update(text, 'utf8').digest('hex'), bytes: Buffer.byteLength(text, 'utf8') } }));
    if (typeof values.out === 'string') process.stderr.write(`audit log written to ${values.out}\n`);
    // The head an auditor keeps elsewhere: `verify --head` shows later that nothing up to it was cut off or rewritten.
    if (last) process.stderr.write(`head: seq ${last.seq}, ${last.hash} (keep it outside this machine; \`airlock audit verify --head HASH\` checks the log still holds it)\n`);
    return 0;
  }
  if (sub === 'verify') {
    // Digests first: a file that cannot be read is a usage error before any verdict.
    const digests = exportFiles.map(fileDigest);
    const events = fileArg ? parseAuditExport(readUserFile(fileArg, 'export'), format) : null;
    const r = events
      ? verifyEvents(events, { head, allowPartial: values.partial === true })
      : withStore(paths!, (s) => s.audit.verify({ head }));
    out(r.message);
    if (!r.ok || digests.length === 0) return r.ok ? 0 : 1;
    // Only a chain that holds vouches for the digests in it.
    const matches = events ? matchExports(events, digests) : withStore(paths!, (s) => matchExports(s.audit.list(), digests));
    for (const m of matches) out(m.line);
    return matches.every((m) => m.event !== null) ? 0 : 1;
  }
  throw new UsageError('usage: airlock audit export|verify …');
}

/** SHA-256 and size of a file named with `--export`, read as a stream (exports can be large). */
function fileDigest(file: string): ExportDigest {
  const h = createHash('sha256');
  let bytes = 0;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new AirlockError('bad-request', `cannot read the export ${file} (${errnoOf(e)})`);
  }
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      bytes += n;
    }
  } catch (e) {
    throw new AirlockError('bad-request', `cannot read the export ${file} (${errnoOf(e)})`);
  } finally {
    closeSync(fd);
  }
  return { file, sha256: h.digest('hex'), bytes };
}

/** A file the user named on the command line; a failure is one clear line, not a stack. */
function readUserFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new AirlockError('bad-request', `cannot read the ${what} ${file} (${errnoOf(e)})`);
  }
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  reviews: cmdReviews,
  show: cmdShow,
  approve: (a) => cmdDecide(a, true),
  deny: (a) => cmdDecide(a, false),
  sessions: cmdSessions,
  exchanges: cmdExchanges,
  exchange: cmdExchange,
  credential: cmdCredential,
  audit: cmdAudit,
  serve: cmdServe,
  status: cmdStatus,
  agent: cmdAgent,
  ca: cmdCa,
  env: cmdEnv,
  run: cmdRun,
};

export async function main(argv: string[]): Promise<number> {
  // Output piped into `head` (or a closed pager): stop quietly, as other command-line tools do.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
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
  const own = cmd === 'run' && rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    out(commandHelp(cmd));
    return 0;
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
