import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LeafIssuer, loadOrCreateCa, systemStoreWarning, writeTrustBundle, type CertAuthority } from '../certs';
import { createFileOnce, writeFileAtomic } from '../certs/fsutil';
import { AgentAuthenticator } from './agents/authenticator';
import { dataPaths, type DataPaths } from './config/paths';
import { loadOptions, type Options, type OptionsInput } from './config/options';
import { createConsoleServer, type ConsoleServer } from './console/server';
import { DECISION_CHANNELS, HAR_EXPORT_MAX_BYTES, MAX_LIST_LIMIT, type AirlockClient, type DecisionChannel, type ExportHarQuery, type ListExchangesQuery, type ListSessionsQuery } from './contract/api';
import { parseTimeBound } from './contract/time';
import { localActor } from './config/local-user';
import { AirlockError } from './contract/errors';
import {
  EXCHANGE_KINDS, VERDICTS,
  type AgentView, type AirlockEvent, type AuditVerifyView, type BodyView, type ExchangeDetailView, type ExchangeKind, type ExchangeView, type HarExportView,
  type ReviewState, type ReviewView, type SessionView, type StatusView, type Verdict,
} from './contract/views';
import { displayBody } from './store/body-display';
import { parseExchangeId } from './store/exchanges';
import { harComment, harFromRecord } from './store/har';
import type { HeaderMap } from './store/types';

/** Characters of each body `getExchange` returns as text (the rest: `airlock exchange ID --body`). */
const BODY_VIEW_CHARS = 64 * 1024;
import { Gateway } from './gateway/proxy';
import { UpstreamPool } from './gateway/upstream';
import { UpstreamProxy } from './gateway/upstream-proxy';
import { createLogger, type Logger } from './log';
import { defaultStages } from './pipeline/default-stages';
import { recordGuardStage, recordStage, type RecordedText } from './pipeline/stages/record';
import { BUILTIN_POLICY, builtinRules, targetDenial } from './pipeline/stages/decide';
import { otherGateway, readRuntime } from './config/runtime-file';
import { headerSecrets, maskQuery, maskTextPre, normalizeSecrets, openStore, querySecrets, parseHeadOption, sessionView, type Store, type StoreOptions } from './store';
import { writeNodePreload } from './env/node-preload';
import { CredentialStore, FileKeyProvider } from './credentials/credential-store';
import { RemoteCache } from './git/remote-cache';
import { holdStage } from './pipeline/stages/hold';
import { ReviewQueue } from './review/queue';
import { clearSpool } from './review/held-body';

export const VERSION = '0.1.0';

export interface StartAirlockOptions extends OptionsInput {
  dataDir: string;
  log?: Logger;
  /** Where the built renderer lives (defaults to out/renderer next to the sources). */
  staticDir?: string;
  /** Timings of each held push when its review is ready (benchmarks, logs). */
  onReviewReady?: (t: { reviewId: string; msFromReceipt: number; analysisMs: number; cacheMs: number }) => void;
  /** Test-only: the store's connection once open (see StoreOptions.testConnection). */
  testStoreConnection?: StoreOptions['testConnection'];
}

export interface RunningAirlock {
  service: AirlockService;
  proxyUrl: string;
  consoleUrl: string | null;
  caPath: string;
  bundlePath: string;
  dataDir: string;
  adminToken: string;
}

/** Deletes kept push bodies older than `days` (by modification time); returns how many. */
export function prunePushBodies(dir: string, days: number, now = Date.now()): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.endsWith('.body')) continue;
    const p = join(dir, name);
    try {
      if (now - statSync(p).mtimeMs > days * 86_400_000) {
        rmSync(p, { force: true });
        removed++;
      }
    } catch {
      /* gone already */
    }
  }
  return removed;
}

/** The admin token for the console API: created once, 0600. */
export function ensureAdminToken(paths: DataPaths): string {
  if (existsSync(paths.adminToken)) {
    chmodSync(paths.adminToken, 0o600);
    return readFileSync(paths.adminToken, 'utf8').trim();
  }
  // Created once, whole: of two first starts at once (a gateway and a CLI, say), both use the token that won.
  createFileOnce(paths.adminToken, randomBytes(32).toString('base64url') + '\n', 0o600);
  return readFileSync(paths.adminToken, 'utf8').trim();
}

export function ensureDataDir(dir: string): DataPaths {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dataPaths(dir);
}

export function defaultStaticDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // A built renderer (index.html beside its assets/): from the sources (main/), the CLI bundle
  // (out/cli/) or the desktop bundle (out/main/). The source folder renderer/ has an index.html too,
  // but one a browser cannot run (it loads src/main.tsx): a blank page, so it never counts.
  for (const c of [join(here, '..', 'out', 'renderer'), join(here, '..', 'renderer'), join(here, 'renderer')]) {
    if (consoleBuilt(c)) return c;
  }
  return join(here, '..', 'out', 'renderer');
}

/** Whether the web console's files are built in `dir` (else the console answers "not built"). */
export function consoleBuilt(dir: string): boolean {
  return existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'assets'));
}

/**
 * The one implementation of `AirlockApi`, used in-process by the desktop shell
 * and over HTTP by the web console and the CLI.
 */
export class AirlockService implements AirlockClient {
  private readonly events = new EventEmitter();
  readonly startedAt = new Date();
  consoleUrl: string | null = null;

  constructor(
    readonly paths: DataPaths,
    readonly options: Options,
    readonly ca: CertAuthority,
    readonly store: Store,
    readonly gateway: Gateway,
    readonly log: Logger,
    readonly queue: ReviewQueue,
    readonly credentials: CredentialStore,
    private readonly closers: Array<() => Promise<void> | void>,
    /** The proxy upstream connections go through (upstreamProxy), or null. */
    readonly upstreamProxy: UpstreamProxy | null = null,
  ) {
    this.events.setMaxListeners(100);
  }

  emit(event: AirlockEvent | (() => AirlockEvent)): void {
    // Built only when someone listens (a console or the desktop window): an exchange's view costs
    // ~1 µs, paid on every request otherwise.
    if (this.events.listenerCount('event') > 0) this.events.emit('event', typeof event === 'function' ? event() : event);
  }

  subscribe(listener: (event: AirlockEvent) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  async getStatus(): Promise<StatusView> {
    return this.statusNow();
  }

  /** The status as of now (synchronous: also pushed to UIs when recording stops or resumes). */
  statusNow(): StatusView {
    const h = this.store.exchanges.health();
    return {
      version: VERSION,
      proxyUrl: this.gateway.url,
      consoleUrl: this.consoleUrl,
      caPath: this.ca.paths.cert,
      dataDir: this.paths.dir,
      startedAt: this.startedAt.toISOString(),
      counts: { exchanges: this.store.exchanges.count(), pendingReviews: this.store.reviews.list({ state: 'pending' }).length },
      recording: !this.options.record ? { state: 'off' }
        : h.ok ? { state: 'on' }
        : { state: 'failing', since: h.since, error: h.error, held: h.held },
      disk: this.diskNow(),
      upstreamProxy: this.upstreamProxy ? { proxy: this.upstreamProxy.display, noProxy: [...this.upstreamProxy.noProxy] } : null,
    };
  }

  /** Free space where the record lives (one statfs call). */
  private diskNow(): StatusView['disk'] {
    try {
      const s = statfsSync(this.paths.dir);
      const freeBytes = s.bavail * s.bsize;
      return { freeBytes, low: this.options.record && freeBytes < this.options.recordDiskWarnBytes };
    } catch {
      return null;
    }
  }

  async listExchanges(query: ListExchangesQuery): Promise<ExchangeView[]> {
    const q = queryObject(query, 'listExchanges', ['limit', 'before', 'agent', 'host', 'kind', 'decision', 'sessionId']);
    const kind = textParam(q.kind, 'kind');
    if (kind && !(EXCHANGE_KINDS as readonly string[]).includes(kind)) {
      throw new AirlockError('bad-request', `The kind "${kind}" is not one of ${EXCHANGE_KINDS.join(', ')}.`);
    }
    const decision = textParam(q.decision, 'decision');
    if (decision && !(VERDICTS as readonly string[]).includes(decision)) {
      throw new AirlockError('bad-request', `The decision "${decision}" is not one of ${VERDICTS.join(', ')}.`);
    }
    const before = textParam(q.before, 'before');
    if (before && !/^[1-9][0-9]{0,15}$/.test(before)) {
      throw new AirlockError('bad-request', `The cursor "before" must be an exchange id (a positive whole number), got "${before}".`);
    }
    return this.store.exchanges.list({
      agent: textParam(q.agent, 'agent'),
      host: textParam(q.host, 'host'),
      kind: kind as ExchangeKind | undefined,
      verdict: decision as Verdict | undefined,
      sessionId: textParam(q.sessionId, 'sessionId'),
      before,
      limit: limitParam(q.limit, 200),
    });
  }

  async listSessions(query: ListSessionsQuery): Promise<SessionView[]> {
    const q = queryObject(query, 'listSessions', ['agent', 'limit', 'before']);
    return this.store.sessions
      .list({ agent: textParam(q.agent, 'agent'), before: textParam(q.before, 'before'), limit: limitParam(q.limit, 100) })
      .map(sessionView);
  }

  async listReviews(query: { state?: ReviewState }): Promise<ReviewView[]> {
    const state = textParam(queryObject(query, 'listReviews', ['state']).state, 'state');
    if (state !== undefined && !REVIEW_STATES.includes(state as ReviewState)) {
      throw new AirlockError('bad-request', `The filter "state" must be one of ${REVIEW_STATES.join(', ')}, not ${JSON.stringify(state.slice(0, 40))}.`);
    }
    return this.store.reviews.list({ state: state as ReviewState | undefined }).map(reviewView);
  }

  async getExchange(q: { id: string }): Promise<ExchangeDetailView> {
    const id = String(parseExchangeId(textParam(queryObject(q, 'getExchange', ['id']).id, 'id') ?? ''));
    const x = this.store.exchanges.get(id);
    if (!x) throw new AirlockError('not-found', `no exchange with id ${id} (it may have been pruned after retentionDays)`);
    const body = (b: Buffer | null, bytes: number, complete: boolean, sha: string | null, headers: HeaderMap | null): BodyView => ({
      bytes, keptBytes: b?.length ?? 0, complete: b !== null && complete, sha256: sha, ...displayBody(b, headers, complete, BODY_VIEW_CHARS),
    });
    return {
      id: x.id, agent: x.agent, sessionId: x.sessionId, kind: x.kind, method: x.method, scheme: x.scheme, host: x.host, port: x.port,
      path: x.path, startedAt: x.startedAt, endedAt: x.endedAt, status: x.status, error: x.error, requestBytes: x.requestBytes,
      responseBytes: x.responseBytes, reviewId: x.reviewId,
      decision: x.verdict ? { verdict: x.verdict, ruleId: x.ruleId ?? '', explanation: x.explanation ?? '' } : null,
      timings: x.timings,
      requestHeaders: x.requestHeaders,
      responseHeaders: x.responseHeaders,
      requestBody: body(x.requestBody, x.requestBytes, x.requestBodyComplete, x.requestBodySha256, x.requestHeaders),
      responseBody: body(x.responseBody, x.responseBytes, x.responseBodyComplete, x.responseBodySha256, x.responseHeaders),
    };
  }

  async getReview(q: { id: string }): Promise<ReviewView> {
    const id = reviewId(queryObject(q, 'getReview', ['id']).id);
    const r = this.store.reviews.get(id);
    if (!r) throw new AirlockError('not-found', `no review with id ${id}`);
    return reviewView(r);
  }

  /**
   * Who decides: the person at this machine, `local:<account>` as the CLI writes it (the console and
   * the CLI are local, behind the 0600 admin token; the desktop app runs as that person). Signing in
   * with an identity provider will name the reviewer instead.
   */
  reviewer(): string {
    return localActor();
  }

  async approveReview(input: { id: string; reason?: string; via?: DecisionChannel }): Promise<ReviewView> {
    const q = queryObject(input, 'approveReview', ['id', 'reason', 'via']);
    return reviewView(this.queue.approve(reviewId(q.id), this.reviewer(), textParam(q.reason, 'reason') ?? null, channelParam(q.via)));
  }

  async denyReview(input: { id: string; reason: string; via?: DecisionChannel }): Promise<ReviewView> {
    const q = queryObject(input, 'denyReview', ['id', 'reason', 'via']);
    return reviewView(this.queue.deny(reviewId(q.id), this.reviewer(), textParam(q.reason, 'reason') ?? '', channelParam(q.via)));
  }

  async listAgents(): Promise<AgentView[]> {
    return this.store.agents.list().map((a) => ({ name: a.name, groups: a.groups, createdAt: a.createdAt }));
  }

  async verifyAudit(query?: { head?: string }): Promise<AuditVerifyView> {
    const head = textParam(queryObject(query, 'verifyAudit', ['head']).head, 'head');
    const r = await this.store.audit.verifyInBackground({ head: head === undefined ? undefined : parseHeadOption(head) });
    return { ok: r.ok, events: r.events, head: r.head, brokenAt: r.brokenAt, headSeq: r.headSeq ?? null, message: r.message };
  }

  async exportHar(query: ExportHarQuery): Promise<HarExportView> {
    const q = queryObject(query, 'exportHar', ['sessionId', 'agent', 'since', 'via']);
    const sessionId = textParam(q.sessionId, 'sessionId');
    const agent = textParam(q.agent, 'agent');
    const sinceText = textParam(q.since, 'since');
    const since = sinceText === undefined ? undefined : parseTimeBound(sinceText);
    if (since === null) {
      throw new AirlockError('bad-request', `"since" must be a date or an ISO time such as 2026-11-01T09:30:00Z, not ${JSON.stringify(sinceText!.slice(0, 40))}.`);
    }
    const via = channelParam(q.via);
    if (sessionId !== undefined && !this.store.sessions.get(sessionId)) throw new AirlockError('not-found', `no session ${sessionId} in the record`);
    const filter = { sessionId, agent, since };
    this.store.exchanges.flush(); // what the UI has shown is in the file the export reads
    const har = await harFromRecord(this.store.file, filter, {
      creator: { name: 'Airlock', version: VERSION },
      comment: harComment(filter, new Date(), via),
      maxBytes: HAR_EXPORT_MAX_BYTES,
      tooLarge: () => new AirlockError('bad-request', `These exchanges make a HAR of more than ${HAR_EXPORT_MAX_BYTES / 1024 / 1024} MiB: export them with \`airlock exchanges export --format har --out FILE\`${sessionId !== undefined ? ` --session ${sessionId}` : ''}, which writes any size.`),
    });
    this.store.audit.append({
      actor: this.reviewer(), action: 'exchanges.exported', subject: 'har',
      details: { count: har.count, since: filter.since ?? null, until: null, agent: agent ?? null, ...(sessionId !== undefined ? { session: sessionId } : {}), out: `download (${via ?? 'api'})`, sha256: har.sha256, bytes: har.bytes },
    });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const name = (sessionId !== undefined ? `session-${sessionId}` : agent !== undefined ? `agent-${agent}` : 'exchanges').replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 80);
    return { fileName: `airlock-${name}-${stamp}.har`, ...har };
  }

  async close(): Promise<void> {
    for (const c of this.closers.reverse()) {
      try {
        await c();
      } catch (e) {
        this.log.warn('error while shutting down', { error: (e as Error).message });
      }
    }
  }
}

/** A list query from a UI (JSON over HTTP or IPC): an object (or nothing) with only the known keys. */
function queryObject(q: unknown, method: string, known: readonly string[]): Record<string, unknown> {
  if (q === undefined || q === null) return {};
  if (typeof q !== 'object' || Array.isArray(q)) throw new AirlockError('bad-request', `The query of ${method} must be an object.`);
  for (const key of Object.keys(q)) {
    if (!known.includes(key)) throw new AirlockError('bad-request', `Unknown ${method} filter "${key}" (known: ${known.join(', ')}).`);
  }
  return q as Record<string, unknown>;
}

const REVIEW_STATES: readonly ReviewState[] = ['pending', 'approved', 'denied', 'expired', 'interrupted'];

/** A review id as the API takes it: text or a whole number. */
function reviewId(v: unknown): string {
  if ((typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isSafeInteger(v))) return String(v);
  throw new AirlockError('bad-request', 'A review id must be given, as text or a whole number.');
}

/** The channel a decision came through (set by the transport); absent: made in-process. */
function channelParam(v: unknown): DecisionChannel | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && (DECISION_CHANNELS as readonly string[]).includes(v)) return v as DecisionChannel;
  throw new AirlockError('bad-request', `"via" must be one of ${DECISION_CHANNELS.join(', ')}.`);
}

/** A text filter: absent or '' means no filter; anything but a string is refused. */
function textParam(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new AirlockError('bad-request', `The filter "${name}" must be text.`);
  return v;
}

/** Rows per page: a whole number ≥ 1; more than MAX_LIST_LIMIT is lowered to it. */
function limitParam(v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new AirlockError('bad-request', `The limit must be a whole number of at least 1, got ${JSON.stringify(v)}.`);
  }
  return Math.min(v, MAX_LIST_LIMIT);
}

export function reviewView(r: import('./store').ReviewRecord): ReviewView {
  const detail = (r.detail ?? {}) as { refs?: ReviewView['refs']; findings?: ReviewView['findings'] };
  return {
    id: r.id,
    exchangeId: r.exchangeId,
    agent: r.agent,
    kind: r.kind as ReviewView['kind'],
    host: r.host,
    repo: r.repo,
    state: r.state,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    decidedAt: r.decidedAt,
    decidedBy: r.decidedBy,
    reason: r.reason,
    bodySha256: r.bodySha256,
    bodyBytes: r.bodyBytes,
    refs: detail.refs ?? [],
    findings: detail.findings ?? [],
    upstreamStatus: r.upstreamStatus,
    upstreamResult: r.upstreamResult ?? null,
    summary: r.summary,
  };
}

/** Composition root: CA, store, gateway, console, wired together. */
/** EACCES on listen: a privileged port, or on Windows a port in a range Hyper-V/WinNAT reserved. */
function portRefused(port: number, flag: string, platform = process.platform): string {
  const why = platform === 'win32'
    ? 'Windows reserves it (Hyper-V/WSL take port ranges: `netsh int ipv4 show excludedportrange protocol=tcp` lists them)'
    : port < 1024 ? 'ports below 1024 need privileges' : 'the system refuses it';
  return `port ${port} on 127.0.0.1 cannot be used: ${why}; pick another with ${flag}`;
}

export async function startAirlock(opts: StartAirlockOptions): Promise<RunningAirlock> {
  const dataDir = resolve(opts.dataDir);
  const paths = ensureDataDir(dataDir);
  const log = opts.log ?? createLogger();
  // One gateway per data dir: a second one would mark the first one's pending reviews interrupted
  // (below) while it still waits for their decisions, and overwrite its runtime file.
  const other = await otherGateway(paths);
  if (other) {
    throw new AirlockError('conflict', `another Airlock gateway is running for ${paths.dir} (pid ${other.pid}, proxy ${other.proxyUrl}); ` +
      'stop it first, or give this one another --data-dir');
  }
  const { dataDir: _d, log: _l, staticDir, onReviewReady, testStoreConnection, ...overrides } = opts;
  const options = loadOptions(paths.config, overrides);
  if (overrides.upstreamProxy === undefined && options.upstreamProxy && hasPassword(options.upstreamProxy) && process.platform !== 'win32') {
    const mode = statSync(paths.config).mode & 0o777;
    if (mode & 0o077) log.warn(`${paths.config} holds the upstream proxy's password and other users of this machine can read it (mode ${mode.toString(8)}); chmod 600 it`);
  }
  // A key file others could read or that another user owns is a CA that may be known elsewhere: said
  // in the log at once and, once the record is open, in the audit log (`ca.warning`).
  const caWarnings: string[] = [];
  let auditCaWarning: ((m: string) => void) | null = null;
  const warnCa = (m: string) => {
    log.warn(m);
    if (auditCaWarning) auditCaWarning(m);
    else caWarnings.push(m);
  };
  const storeWarning = options.systemCaFiles === undefined ? systemStoreWarning() : null;
  if (storeWarning) log.warn(storeWarning);
  const ca = await loadOrCreateCa(dataDir, { onWarning: warnCa });
  const bundlePath = writeTrustBundle(ca, { files: options.systemCaFiles });
  writeNodePreload(paths.nodePreload);
  const adminToken = ensureAdminToken(paths);
  // Airlock's own listening ports (filled in as they open): agents are refused there, by name in the policy and by address when a connection opens.
  const ownPorts = new Set<number>();
  const upstreamProxy = UpstreamProxy.from(options.upstreamProxy, options.upstreamNoProxy);
  const upstream = new UpstreamPool({
    onWarning: (m) => log.warn(m),
    extraCaFiles: options.upstreamCa,
    connectTimeoutMs: options.connectTimeoutMs,
    responseTimeoutMs: options.upstreamTimeoutMs,
    systemTrust: { files: options.systemCaFiles, distrust: [ca.certPem] },
    ownPorts,
    maxHeaderBytes: options.upstreamMaxHeaderBytes,
    proxy: upstreamProxy,
  });
  let service: AirlockService | null = null;
  const store = openStore(paths.db, {
    writer: options.recordWriter,
    onError: (e) => log.error('recording failed', { error: (e as Error).message }),
    // The database refusing writes stops the gateway (recordGuardStage): every UI hears of it at once.
    onRecordHealth: (h) => {
      if (h.ok) log.warn('recording again: the held writes are saved and requests are forwarded');
      else log.error('recording stopped: requests are refused until the database takes writes', { error: h.error });
      service?.emit(() => ({ type: 'status', status: service!.statusNow() }));
    },
    testConnection: testStoreConnection,
  });
  const closers: Array<() => Promise<void> | void> = [];
  closers.push(() => store.close());
  closers.push(() => upstream.destroy());
  // A push that was pending when the last process died is never approved or forwarded.
  const interrupted = store.reviews.markInterrupted(new Date());
  // A gateway that stopped without closing the record (killed, crashed) left its runtime file, open
  // sessions, spooled pushes and perhaps an approved push whose forwarding was never recorded:
  // put right before this one listens, with one audit event saying what was found.
  const left = readRuntime(paths);
  const recovery = store.recover({
    previous: left ? { pid: left.pid, startedAt: left.startedAt ?? null } : null,
    spool: clearSpool(paths.spool),
  });
  if (recovery.uncleanStop) {
    log.warn(`the last gateway on this data dir (pid ${left!.pid}) stopped without closing the record: exchanges after #${recovery.lastExchange?.id ?? 0} that were in flight or not yet written may be missing (audit event record.repaired)`);
  }
  if (recovery.forwardUnknown.length > 0) {
    log.warn(`approved push(es) ${recovery.forwardUnknown.map((id) => `#${id}`).join(', ')} were being forwarded when the last gateway stopped: whether upstream took them is not recorded; check upstream`);
  }
  auditCaWarning = (m) => store.audit.append({ actor: 'system', action: 'ca.warning', subject: 'ca', details: { message: m } });
  for (const m of caWarnings.splice(0)) auditCaWarning(m);
  // The policy in force is part of the record: an auditor sees which rules decided from when on.
  store.audit.append({ actor: 'system', action: 'policy.loaded', subject: BUILTIN_POLICY.name, details: { rules: builtinRules(upstreamProxy) } });
  if (interrupted.length > 0) log.warn(`${interrupted.length} review(s) pending at the last shutdown marked interrupted`);
  const credentials = new CredentialStore(paths.credentials, new FileKeyProvider(paths.credentialsKey));
  closers.push(() => credentials.close());
  // What the record masks wherever it appears: every stored credential, the upstream proxy's password.
  const secrets = () => [...credentials.allSecrets(), ...(upstreamProxy?.secrets() ?? [])];
  store.setSecrets(secrets());
  // Credentials set while running (by the CLI) are picked up by the lookup every upstream request makes
  // (below), and before any exchange is recorded (the record stage), which refreshes the log's mask list:
  // a plain-HTTP or refused request never looks a credential up, but its path may still carry one.
  let maskedVersion = credentials.version;
  const refreshMasks = (): void => {
    if (credentials.currentVersion() !== maskedVersion) {
      maskedVersion = credentials.version;
      store.setSecrets(secrets());
    }
  };
  // Retention: exchanges older than N days go (an audit event says so); audit rows never do.
  const prune = () => {
    try {
      const n = store.exchanges.prune(options.retentionDays);
      if (n > 0) log.info(`pruned ${n} exchanges older than ${options.retentionDays} days`);
      const removed = prunePushBodies(join(dataDir, 'pushes'), options.retentionDays);
      if (removed > 0) {
        store.audit.append({ actor: 'system', action: 'retention.pruned', subject: 'push-bodies', details: { count: removed, olderThanDays: options.retentionDays } });
      }
    } catch (e) {
      log.warn('retention pruning failed', { error: (e as Error).message });
    }
  };
  prune();
  // And the bodies kept stay within bodyStoreBytes (an agent's model requests alone can add GBs a week).
  store.exchanges.limitBodies(options.bodyStoreBytes);
  const pruneTimer = setInterval(prune, 6 * 3600_000);
  pruneTimer.unref();
  closers.push(() => clearInterval(pruneTimer));
  const queue = new ReviewQueue(store, options.reviewTimeoutMs, () => new Date(), (e) => log.error('recording a review failed', { error: e.message }));
  const upstreamCaFile = join(dataDir, 'upstream-ca.pem');
  writeFileSync(upstreamCaFile, [...upstream.ca].join('\n') + '\n', { mode: 0o644 });
  const hold = holdStage({
    queue,
    cache: new RemoteCache(paths.gitCache, upstreamProxy),
    log,
    spoolDir: paths.spool,
    pushesDir: join(dataDir, 'pushes'),
    maxPushBytes: options.maxPushBytes,
    maxPushesPerAgent: options.maxPushesPerAgent,
    pushMinFreeBytes: options.pushMinFreeBytes,
    spoolThresholdBytes: options.spoolThresholdBytes,
    upstreamCaFile,
    onReviewReady,
  });

  // Live rows show what the record holds: its path and error, credentials masked as they were written
  // (sensitive query values, the stored credentials, the exchange's own header secrets). With recording
  // off: query values and the exchange's own header secrets.
  const emitExchange = (ex: import('./exchange/exchange').Exchange, recorded: RecordedText | null) => service?.emit(() => {
    const view = ex.toView();
    if (recorded) return { type: 'exchange', exchange: { ...view, path: recorded.path, error: recorded.error } };
    const own = normalizeSecrets([...headerSecrets(ex.requestHeaders), ...headerSecrets(ex.responseHeaders), ...querySecrets(view.path)]);
    return { type: 'exchange', exchange: { ...view, path: maskTextPre(maskQuery(view.path), own), error: view.error === null ? null : maskTextPre(view.error, own) } };
  });
  const stages = defaultStages({ guard: options.record ? recordGuardStage(store) : undefined, hold, record: recordStage(options.record ? store : null, emitExchange, refreshMasks), ownPorts, upstreamProxy });
  const auth = new AgentAuthenticator(store.agents);
  const issuer = new LeafIssuer(ca, { onWarning: warnCa });
  void issuer.warm();
  closers.push(async () => {
    issuer.close();
    await issuer.flush(); // leaves still being written to the disk cache
  });
  const gateway = new Gateway({
    issuer,
    auth,
    upstream,
    stages,
    log,
    sessions: options.record ? {
      sessionStarted: (s) => store.sessions.start(s),
      sessionEnded: (id, at) => store.sessions.end(id, at),
    } : undefined,
    port: options.proxyPort,
    upstreamTimeoutMs: options.upstreamTimeoutMs,
    clientHeadersTimeoutMs: options.clientHeadersTimeoutMs,
    clientBodyIdleTimeoutMs: options.clientBodyIdleTimeoutMs,
    clientTlsTimeoutMs: options.clientTlsTimeoutMs,
    maxHeaderCount: options.maxHeaderCount,
    maxUpstreamRequestsPerAgentHost: options.maxUpstreamRequestsPerAgentHost,
    maxHeaderBytes: options.maxHeaderBytes,
    bodyCaptureBytes: options.record ? options.bodyCaptureBytes : 0,
    exchangeIds: () => store.exchanges.nextId(),
    deniedTarget: targetDenial(ownPorts, upstreamProxy),
    credentials: {
      resolve: (authority) => {
        const c = credentials.resolve(authority);
        // A credential set while running is masked in the log before its first exchange is recorded.
        refreshMasks();
        return c ? { header: c.header, secrets: c.secrets } : null;
      },
    },
  });
  try {
    await gateway.start();
  } catch (e) {
    store.close();
    upstream.destroy();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') throw new AirlockError('unavailable', `port ${options.proxyPort} on 127.0.0.1 is already in use; pick another with --proxy-port`);
    if (err.code === 'EACCES') throw new AirlockError('unavailable', portRefused(options.proxyPort, '--proxy-port'));
    throw e;
  }
  closers.push(() => gateway.stop());
  // Closers run last first: held pushes are rejected ("interrupted: Airlock shut down", as git prints
  // it) before the gateway closes their connections, which would otherwise read as the agent leaving.
  closers.push(async () => {
    if (queue.shutdown() > 0) await new Promise((r) => setTimeout(r, 200)); // their answers reach the agents
  });
  ownPorts.add(Number(new URL(gateway.url).port));
  if (upstreamProxy) {
    // Said at once: otherwise the first sign of a wrong upstreamProxy is every agent's request failing.
    upstreamProxy.probe(5000).then((err) => {
      if (err) log.warn(`the upstream proxy ${upstreamProxy.display} cannot be reached (${err}); requests through it fail until it can`);
    }, () => undefined);
  }
  service = new AirlockService(paths, options, ca, store, gateway, log, queue, credentials, closers, upstreamProxy);
  queue.onChange((r) => service?.emit({ type: 'review', review: reviewView(r) }));

  let consoleServer: ConsoleServer | null = null;
  if (options.consolePort !== null) {
    try {
      consoleServer = await createConsoleServer({ api: service, token: adminToken, port: options.consolePort, staticDir: staticDir ?? defaultStaticDir() });
    } catch (e) {
      await service.close();
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new AirlockError('unavailable', `port ${options.consolePort} on 127.0.0.1 is already in use; pick another with --console-port`);
      if (err.code === 'EACCES') throw new AirlockError('unavailable', portRefused(options.consolePort!, '--console-port'));
      throw e;
    }
    service.consoleUrl = consoleServer.url;
    ownPorts.add(Number(new URL(consoleServer.url).port));
    closers.push(() => consoleServer!.close());
  }
  const runtime = { pid: process.pid, proxyUrl: gateway.url, consoleUrl: consoleServer?.url ?? null, startedAt: service.startedAt.toISOString() };
  // Atomic: `airlock run`, `env` and `status` read it from other processes, maybe while it is written.
  writeFileAtomic(paths.runtime, JSON.stringify(runtime) + '\n', 0o600);
  closers.push(() => rmSync(paths.runtime, { force: true }));
  return { service, proxyUrl: gateway.url, consoleUrl: consoleServer?.url ?? null, caPath: ca.paths.cert, bundlePath, dataDir, adminToken };
}

/** True when a proxy URL carries a password (`http://user:password@host:port`). */
export function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}
