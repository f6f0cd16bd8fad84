// `airlock sessions` and `airlock exchanges` (the real CLI as child processes) over a real SQLite file written
// through openStore, and the same lists through the API: AirlockService in-process and the console's POST /api.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir, runCommand, type RunResult } from '../helpers';
import { AIRLOCK_BIN, cleanCliEnv, REPO_ROOT, startTestAirlock, type TestAirlock } from '../helpers/airlock';
import { openStore, type ExchangeRecord, type Store } from '../../main/store';
import { createHttpApiClient } from '../../main/console/client';
import { AirlockError } from '../../main/contract/errors';
import type { ExchangeView, SessionView } from '../../main/contract/views';

function cli(args: string[], env: NodeJS.ProcessEnv = cleanCliEnv()): Promise<RunResult> {
  return runCommand(process.execPath, [AIRLOCK_BIN, ...args], { env, cwd: REPO_ROOT, timeoutMs: 30_000 });
}

/** A user-facing failure: exactly one line on stderr, no stack trace. */
function assertOneLine(r: RunResult, pattern?: RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'stack trace on stderr');
  if (pattern) assert.match(lines[0]!, pattern);
}

// ---- the recorded data: three sessions, fourteen exchanges ----

const T0 = Date.parse('2026-03-01T09:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
/** An agent-written path carrying a terminal escape (CSI, 7-bit and 8-bit) and a right-to-left override. */
const HOSTILE_PATH = '/x/\x1b[31mRED\x1b[0m/\u009b2J/\u202eexe.txt';

const SESSIONS = [
  { id: 'sess-a1', agent: 'claude', clientAddress: '127.0.0.1', startedAt: at(0), endedAt: at(60_000), token: '0123456789ab', via: 'run claude (pid 4242)' },
  { id: 'sess-b1', agent: 'codex', clientAddress: '127.0.0.1', startedAt: at(10_000), endedAt: null },
  { id: 'sess-a2', agent: 'claude', clientAddress: '::1', startedAt: at(20_000), endedAt: null },
] as const;
const HOSTS = ['api.github.com', 'github.com', 'registry.npmjs.org'] as const;
const KINDS = ['http-api', 'git-fetch', 'git-push', 'other'] as const;

interface Seed {
  id: string;
  sessionId: string;
  agent: string;
  host: string;
  kind: ExchangeRecord['kind'];
  verdict: ExchangeRecord['verdict'];
  path: string;
}

function exchange(id: string, i: number): ExchangeRecord {
  const s = SESSIONS[i % 3]!;
  const kind = KINDS[i % 4]!;
  const verdict: ExchangeRecord['verdict'] = i === 13 ? null : i % 5 === 4 ? 'deny' : kind === 'git-push' ? 'review' : 'allow';
  return {
    id,
    sessionId: s.id,
    agent: s.agent,
    startedAt: at(25_000 + i * 1000),
    endedAt: verdict === null ? null : at(25_000 + i * 1000 + 120),
    method: kind === 'git-push' ? 'POST' : 'GET',
    scheme: 'https',
    host: HOSTS[i % 3]!,
    port: i === 5 ? 8443 : 443,
    path: i === 7 ? HOSTILE_PATH : `/repos/acme/widgets/pulls?page=${i}`,
    kind,
    verdict,
    ruleId: verdict ? `rule-${verdict}` : null,
    explanation: verdict ? `because ${verdict}` : null,
    status: verdict === 'deny' ? 403 : verdict === null ? null : 200,
    error: null,
    requestBytes: 300 + i,
    responseBytes: 1024 * i,
    timings: { connectMs: null, tlsMs: null, upstreamMs: 100, totalMs: 120.4 },
    requestHeaders: { 'user-agent': 'test' },
    responseHeaders: verdict === null ? null : { 'content-type': 'application/json' },
    requestBody: null,
    responseBody: Buffer.alloc(64, 0x61),
    requestBodyComplete: true,
    responseBodyComplete: true,
    requestBodySha256: null,
    responseBodySha256: null,
    reviewId: null,
  };
}

/** Records the sessions and exchanges through the store API; returns the exchanges as recorded, oldest first. */
function record(store: Store): Seed[] {
  for (const s of SESSIONS) {
    store.sessions.start({ id: s.id, agent: s.agent, clientAddress: s.clientAddress, startedAt: s.startedAt, token: 'token' in s ? s.token : null, via: 'via' in s ? s.via : null });
    if (s.endedAt) store.sessions.end(s.id, s.endedAt);
  }
  const seeds: Seed[] = [];
  for (let i = 0; i < 14; i++) {
    const rec = exchange(store.exchanges.nextId(), i);
    store.exchanges.record(rec);
    seeds.push({ id: rec.id, sessionId: rec.sessionId!, agent: rec.agent, host: rec.host, kind: rec.kind, verdict: rec.verdict, path: rec.path });
  }
  store.exchanges.flush();
  return seeds;
}

/** The expected answer: matching ids, newest (highest id) first. */
function expectIds(seeds: Seed[], pred: (s: Seed) => boolean = () => true): string[] {
  return seeds.filter(pred).map((s) => s.id).sort((a, b) => Number(b) - Number(a));
}

const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id);

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => removeDir(d)));
});

/** A data dir whose record holds the seeded sessions and exchanges (removed after the file). */
async function seededDir(prefix: string): Promise<{ dir: string; seeds: Seed[] }> {
  const dir = await makeTempDir(prefix);
  dirs.push(dir);
  const store = openStore(join(dir, 'airlock.db'));
  try {
    return { dir, seeds: record(store) };
  } finally {
    store.close();
  }
}

describe('airlock sessions / airlock exchanges (the SQLite file, no gateway running)', { concurrency: 4 }, () => {
  let D: string;
  let seeds: Seed[];
  before(async () => {
    ({ dir: D, seeds } = await seededDir('airlock-cli-record-'));
  });
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cli([...args, '--json', '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  test('sessions: a table, newest first, "open" for sessions not ended, exchange counts', async () => {
    const r = await cli(['sessions', '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^SESSION\s+AGENT\s+CLIENT\s+STARTED\s+ENDED\s+EXCHANGES\s+VIA$/);
    assert.equal(lines.length, 4);
    assert.match(lines[1]!, /^sess-a2\s+claude\s+::1\s+2026-03-01T09:00:20Z\s+open\s+4\s+-$/);
    assert.match(lines[2]!, /^sess-b1\s+codex\s+127\.0\.0\.1\s+2026-03-01T09:00:10Z\s+open\s+5\s+-$/);
    assert.match(lines[3]!, /^sess-a1\s+claude\s+127\.0\.0\.1\s+2026-03-01T09:00:00Z\s+2026-03-01T09:01:00Z\s+5\s+run claude \(pid 4242\)$/);
  });

  test('sessions --agent claude --json: that agent only, as SessionView', async () => {
    const list = await json<SessionView[]>(['sessions', '--agent', 'claude']);
    assert.deepEqual(list, [
      { id: 'sess-a2', agent: 'claude', clientAddress: '::1', startedAt: at(20_000), endedAt: null, token: null, via: null, exchangeCount: 4 },
      { id: 'sess-a1', agent: 'claude', clientAddress: '127.0.0.1', startedAt: at(0), endedAt: at(60_000), token: '0123456789ab', via: 'run claude (pid 4242)', exchangeCount: 5 },
    ]);
    assert.deepEqual(await json<SessionView[]>(['sessions', '--agent', 'nobody']), []);
    const none = await cli(['sessions', '--agent', 'nobody', '--data-dir', D]);
    assert.equal(none.stdout, 'no sessions of agent "nobody"\n');
  });

  test('sessions paging: --limit and --before, a hint on stderr while more exist', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await cli(['sessions', '--limit', '2', '--json', '--data-dir', D, ...(cursor ? ['--before', cursor] : [])]);
      assert.equal(r.code, 0, r.stderr);
      const rows = JSON.parse(r.stdout) as SessionView[];
      seen.push(...ids(rows));
      const hint = /add --before (\S+) for the next page/.exec(r.stderr);
      if (!hint) break;
      assert.equal(hint[1], rows[rows.length - 1]!.id);
      cursor = hint[1];
    }
    assert.deepEqual(seen, ['sess-a2', 'sess-b1', 'sess-a1']);
    const unknown = await cli(['sessions', '--before', 'no-such-session', '--data-dir', D]);
    assert.equal(unknown.code, 1);
    assertOneLine(unknown, /No session no-such-session/);
  });

  test('exchanges --session S --json: that session only, newest first, as ExchangeView', async () => {
    const list = await json<ExchangeView[]>(['exchanges', '--session', 'sess-b1']);
    assert.deepEqual(ids(list), expectIds(seeds, (s) => s.sessionId === 'sess-b1'));
    const first = list[0]!;
    assert.equal(first.agent, 'codex');
    assert.equal(first.sessionId, 'sess-b1');
    assert.equal(typeof first.timings.totalMs, 'number');
    assert.ok(!('requestHeaders' in first) && !('responseBody' in first), 'a list row is a view, not the full record');
  });

  test('each filter, and filters combined', async () => {
    const cases: Array<[string[], (s: Seed) => boolean]> = [
      [['--agent', 'claude'], (s) => s.agent === 'claude'],
      [['--host', 'github.com'], (s) => s.host === 'github.com'],
      [['--host', 'GitHub.com'], (s) => s.host === 'github.com'],
      [['--kind', 'git-push'], (s) => s.kind === 'git-push'],
      [['--kind', 'other'], (s) => s.kind === 'other'],
      [['--decision', 'deny'], (s) => s.verdict === 'deny'],
      [['--decision', 'review'], (s) => s.verdict === 'review'],
      [['--decision', 'allow'], (s) => s.verdict === 'allow'],
      [['--agent', 'claude', '--kind', 'http-api'], (s) => s.agent === 'claude' && s.kind === 'http-api'],
      [['--session', 'sess-a1', '--host', 'api.github.com', '--decision', 'allow'],
        (s) => s.sessionId === 'sess-a1' && s.host === 'api.github.com' && s.verdict === 'allow'],
    ];
    for (const [args, pred] of cases) {
      const want = expectIds(seeds, pred);
      assert.ok(want.length > 0 && want.length < seeds.length, `the case ${args.join(' ')} should select some rows`);
      assert.deepEqual(ids(await json<ExchangeView[]>(['exchanges', ...args])), want, args.join(' '));
    }
    // The exchange without a decision is listed, but matches no --decision.
    assert.equal((await json<ExchangeView[]>(['exchanges'])).find((x) => x.id === seeds[13]!.id)?.decision, null);
    const none = await cli(['exchanges', '--agent', 'nobody', '--data-dir', D]);
    assert.equal(none.code, 0);
    assert.equal(none.stdout, 'no agent named "nobody" has exchanges in this record (`airlock agent list` lists the agents)\n');
    const noMatch = await cli(['exchanges', '--agent', 'claude', '--decision', 'allow', '--kind', 'git-push', '--host', 'nowhere.example', '--data-dir', D]);
    assert.equal(noMatch.stdout, 'no exchanges match these filters\n');
    // The host as the console shows it, with its port: filtered by the name, and said so.
    const withPort = await cli(['exchanges', '--host', 'github.com:443', '--json', '--data-dir', D]);
    assert.equal(withPort.code, 0, withPort.stderr);
    assert.deepEqual(ids(JSON.parse(withPort.stdout) as ExchangeView[]), expectIds(seeds, (s) => s.host === 'github.com'));
    assert.match(withPort.stderr, /--host filters by host name: every port of github\.com is listed, not only 443/);
  });

  test('exchanges paging with --before: every row once, newest first; a hint on stderr until the last page', async () => {
    for (const filter of [[], ['--agent', 'claude']]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      for (; pages < 10; pages++) {
        const r = await cli(['exchanges', ...filter, '--limit', '4', '--json', '--data-dir', D, ...(cursor ? ['--before', cursor] : [])]);
        assert.equal(r.code, 0, r.stderr);
        const rows = JSON.parse(r.stdout) as ExchangeView[];
        assert.ok(rows.length <= 4);
        seen.push(...ids(rows));
        const hint = /^airlock exchanges: more rows are older; add --before (\d+) for the next page$/m.exec(r.stderr);
        if (!hint) {
          assert.equal(r.stderr, '');
          break;
        }
        assert.equal(hint[1], rows[rows.length - 1]!.id);
        cursor = hint[1];
      }
      const want = expectIds(seeds, filter.length ? (s) => s.agent === 'claude' : undefined);
      assert.deepEqual(seen, want, filter.join(' '));
      assert.equal(pages + 1, Math.ceil(want.length / 4), 'no empty last page');
    }
    const past = await cli(['exchanges', '--before', seeds[0]!.id, '--data-dir', D]);
    assert.equal(past.stdout, 'no older exchanges\n');
  });

  test('exchanges: the readable table', async () => {
    const r = await cli(['exchanges', '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^\s*ID\s+TIME\s+AGENT\s+METHOD\s+URL\s+KIND\s+DECISION\s+STATUS\s+BYTES\s+MS$/);
    assert.equal(lines.length, 1 + seeds.length);
    const row = (i: number) => lines.find((l) => l.trimStart().startsWith(`${seeds[i]!.id} `))!;
    // i = 4: session sess-b1 (codex), github.com, http-api, deny (4 % 5 === 4) → 403; 304 bytes up, 4 KiB down.
    assert.match(row(4), /2026-03-01T09:00:29Z\s+codex\s+GET\s+https:\/\/github\.com\/repos\/acme\/widgets\/pulls\?page=4\s+http-api\s+deny\s+403\s+304\/4\.0K\s+120$/);
    // i = 5: a non-default port is shown; i = 13: no decision, not ended.
    assert.match(row(5), /https:\/\/registry\.npmjs\.org:8443\/repos\//);
    assert.match(row(13), /\s-\s+open\s+313\/13\.0K\s+120$/);
  });

  test('an agent-written escape sequence in a path is never printed raw', async () => {
    const r = await cli(['exchanges', '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    for (const c of ['\x1b', '\u009b', '\u202e']) assert.ok(!r.stdout.includes(c), `raw U+${c.charCodeAt(0).toString(16)} in the table`);
    assert.ok(r.stdout.includes('https://github.com/x/\\x1b[31mRED\\x1b[0m/\\x9b2J/\\u202eexe.txt'), r.stdout);
    const j = await cli(['exchanges', '--json', '--data-dir', D]);
    for (const c of ['\x1b', '\u009b', '\u202e']) assert.ok(!j.stdout.includes(c), `raw U+${c.charCodeAt(0).toString(16)} in the JSON`);
    // Still valid JSON, and the path reads back exactly as recorded.
    const hostile = (JSON.parse(j.stdout) as ExchangeView[]).find((x) => x.id === seeds[7]!.id)!;
    assert.equal(hostile.path, HOSTILE_PATH);
  });

  test('bad values: exit 2, one line naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['exchanges', '--kind', 'push'], /--kind must be one of git-push, git-fetch, http-api, other, got "push"/],
      [['exchanges', '--decision', 'maybe'], /--decision must be one of allow, review, deny, got "maybe"/],
      [['exchanges', '--limit', '0'], /--limit must be a whole number from 1 to 1000/],
      [['exchanges', '--limit', 'ten'], /--limit must be a whole number/],
      [['exchanges', '--limit', '1001'], /--limit must be a whole number from 1 to 1000/],
      [['exchanges', '--before', 'abc'], /--before must be an exchange id/],
      [['exchanges', '--kind', '\x1b[2Jx'], /--kind must be one of .*got "\\x1b\[2Jx"/],
      [['exchanges', '--session', ''], /--session needs a value/],
      [['exchanges', '--frob'], /--frob/],
      [['exchanges', 'extra'], /extra/],
      [['sessions', '--limit', '2.5'], /--limit must be a whole number/],
      [['sessions', '--kind', 'git-push'], /--kind/],
    ];
    await Promise.all(cases.map(async ([args, pattern]) => {
      const r = await cli([...args, '--data-dir', D]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assertOneLine(r, pattern);
      assert.ok(!r.stderr.includes('\x1b'), 'raw escape in the usage error');
      assert.equal(r.stdout, '');
    }));
  });

  test('a data dir without a record: exit 1, one line (no empty database created)', async () => {
    const empty = join(D, 'not-a-data-dir');
    for (const cmd of ['sessions', 'exchanges']) {
      const r = await cli([cmd, '--data-dir', empty]);
      assert.equal(r.code, 1);
      assertOneLine(r, /no Airlock record in .*airlock serve/);
    }
    assert.ok(!existsSync(empty));
  });

  test('help lists both commands', async () => {
    const r = await cli(['help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^ {2}airlock sessions \[--agent NAME\]/m);
    assert.match(r.stdout, /^ {2}airlock exchanges \[--session ID\] .*--decision allow\|review\|deny/m);
  });
});

describe('the same lists through the API (AirlockService and POST /api/<method>)', { concurrency: 1 }, () => {
  let t: TestAirlock;
  let seeds: Seed[];
  before(async () => {
    t = await startTestAirlock();
    seeds = record(t.service.store);
  });
  after(async () => {
    await t?.close();
  });

  async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof AirlockError, `expected an AirlockError, got ${String(e)}`);
      assert.equal(e.code, code);
      assert.match(e.message, message);
      return true;
    });
  }

  test('listExchanges: each filter, combined, paged', async () => {
    const s = t.service;
    assert.deepEqual(ids(await s.listExchanges({})), expectIds(seeds));
    assert.deepEqual(ids(await s.listExchanges({ agent: 'codex' })), expectIds(seeds, (x) => x.agent === 'codex'));
    assert.deepEqual(ids(await s.listExchanges({ host: 'registry.npmjs.org' })), expectIds(seeds, (x) => x.host === 'registry.npmjs.org'));
    assert.deepEqual(ids(await s.listExchanges({ kind: 'git-fetch' })), expectIds(seeds, (x) => x.kind === 'git-fetch'));
    assert.deepEqual(ids(await s.listExchanges({ decision: 'review' })), expectIds(seeds, (x) => x.verdict === 'review'));
    assert.deepEqual(ids(await s.listExchanges({ sessionId: 'sess-a2' })), expectIds(seeds, (x) => x.sessionId === 'sess-a2'));
    assert.deepEqual(
      ids(await s.listExchanges({ agent: 'claude', decision: 'allow', host: '' })),
      expectIds(seeds, (x) => x.agent === 'claude' && x.verdict === 'allow'),
      "'' is no filter",
    );
    const all = expectIds(seeds);
    const page1 = ids(await s.listExchanges({ limit: 5 }));
    const page2 = ids(await s.listExchanges({ limit: 5, before: page1[4] }));
    assert.deepEqual([...page1, ...page2], all.slice(0, 10));
    assert.equal((await s.listExchanges({ limit: 100_000 })).length, seeds.length, 'a large limit is lowered, not refused');
  });

  test('listSessions: newest first, by agent, paged', async () => {
    const s = t.service;
    assert.deepEqual(ids(await s.listSessions({})), ['sess-a2', 'sess-b1', 'sess-a1']);
    assert.deepEqual(await s.listSessions({ agent: 'codex' }), [
      { id: 'sess-b1', agent: 'codex', clientAddress: '127.0.0.1', startedAt: at(10_000), endedAt: null, token: null, via: null, exchangeCount: 5 },
    ]);
    assert.deepEqual(ids(await s.listSessions({ limit: 1, before: 'sess-b1' })), ['sess-a1']);
  });

  test('bad queries: bad-request (not-found for an unknown session cursor), one sentence each', async () => {
    const s = t.service;
    await rejectsWith(s.listExchanges({ kind: 'push' as never }), 'bad-request', /kind "push" is not one of git-push, git-fetch, http-api, other/);
    await rejectsWith(s.listExchanges({ decision: 'maybe' as never }), 'bad-request', /decision "maybe" is not one of allow, review, deny/);
    await rejectsWith(s.listExchanges({ verdict: 'deny' } as never), 'bad-request', /Unknown listExchanges filter "verdict"/);
    await rejectsWith(s.listExchanges({ limit: 0 }), 'bad-request', /limit must be a whole number/);
    await rejectsWith(s.listExchanges({ limit: '5' as never }), 'bad-request', /limit must be a whole number/);
    await rejectsWith(s.listExchanges({ before: 'abc' }), 'bad-request', /exchange id/);
    await rejectsWith(s.listExchanges({ agent: 7 as never }), 'bad-request', /"agent" must be text/);
    await rejectsWith(s.listExchanges([] as never), 'bad-request', /must be an object/);
    await rejectsWith(s.listSessions({ state: 'open' } as never), 'bad-request', /Unknown listSessions filter "state"/);
    await rejectsWith(s.listSessions({ before: 'nope' }), 'not-found', /No session nope/);
  });

  test('over HTTP: the console registers listSessions and the filters with no extra wiring', async () => {
    const api = createHttpApiClient(t.consoleUrl!, t.adminToken);
    assert.deepEqual(await api.listSessions({ agent: 'claude' }), await t.service.listSessions({ agent: 'claude' }));
    assert.deepEqual(ids(await api.listExchanges({ decision: 'deny', limit: 2 })), expectIds(seeds, (x) => x.verdict === 'deny').slice(0, 2));
    await rejectsWith(api.listExchanges({ kind: 'push' as never }), 'bad-request', /kind "push"/);
  });

  test('the CLI reads the same file while the gateway has it open', async () => {
    const r = await cli(['exchanges', '--decision', 'deny', '--json', '--data-dir', t.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ids(JSON.parse(r.stdout) as ExchangeView[]), expectIds(seeds, (x) => x.verdict === 'deny'));
    const sessions = await cli(['sessions', '--json', '--data-dir', t.dataDir]);
    assert.deepEqual(ids(JSON.parse(sessions.stdout) as SessionView[]), ['sess-a2', 'sess-b1', 'sess-a1']);
  });
});

describe('airlock exchange ID (one exchange in full, from the SQLite file)', { concurrency: 4 }, () => {
  let D: string;
  const ids: Record<string, string> = {};
  // A model request (compressed in the store), a gzip-encoded JSON answer, a binary body, a body cut
  // at the capture cap, one that was never kept, and agent-written text carrying terminal escapes.
  const prompt = Buffer.from(JSON.stringify({ model: 'm', messages: Array.from({ length: 300 }, (_, i) => ({ role: 'user', content: `turn ${i}: fix the test in src/app.ts` })) }));
  const answer = { id: 'msg_1', content: [{ type: 'text', text: 'done \x1b[2J' }] };
  const binary = Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 7, 8]);
  before(async () => {
    D = await makeTempDir('airlock-cli-exchange-');
    dirs.push(D);
    const { gzipSync } = await import('node:zlib');
    const store = openStore(join(D, 'airlock.db'));
    try {
      const base = exchange('0', 0);
      const add = (name: string, over: Partial<ExchangeRecord>) => {
        const rec = { ...base, ...over, id: store.exchanges.nextId() };
        store.exchanges.record(rec);
        ids[name] = rec.id;
      };
      add('model', {
        method: 'POST', host: 'api.anthropic.com', path: '/v1/messages', kind: 'http-api',
        requestHeaders: { 'content-type': 'application/json', 'x-api-key': '[masked]' }, requestBody: prompt, requestBytes: prompt.length,
        responseHeaders: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, responseBody: gzipSync(JSON.stringify(answer)),
        responseBytes: gzipSync(JSON.stringify(answer)).length,
      });
      add('binary', { responseHeaders: { 'content-type': 'application/octet-stream' }, responseBody: binary, responseBytes: binary.length });
      add('capped', { responseBody: Buffer.from('first part'), responseBodyComplete: false, responseBytes: 5_000_000, responseBodySha256: 'ab'.repeat(32) });
      add('dropped', { responseBody: null, responseBytes: 4096, responseBodyComplete: false, responseBodySha256: 'cd'.repeat(32), path: HOSTILE_PATH });
      store.exchanges.flush();
    } finally {
      store.close();
    }
  });

  test('shows every field, headers, and text bodies: JSON indented, a gzip answer decoded, escapes escaped', async () => {
    const r = await cli(['exchange', ids.model!, '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^exchange ${ids.model}$`, 'm'));
    assert.match(r.stdout, /^ {2}request {3}POST https:\/\/api\.anthropic\.com\/v1\/messages$/m);
    assert.match(r.stdout, /^ {2}decision {2}allow \(rule-allow: because allow\)$/m);
    assert.match(r.stdout, /^ {2}x-api-key: \[masked\]$/m);
    assert.match(r.stdout, new RegExp(`^> request body: ${(prompt.length / 1024).toFixed(1)}K \\(JSON indented for display\\)`, 'm'));
    assert.match(r.stdout, /^ {8}"content": "turn 299: fix the test in src\/app\.ts"$/m, 'the whole model request, indented');
    assert.match(r.stdout, /^< response body: \d+ \(gzip-decoded for display, JSON indented for display\)/m);
    assert.match(r.stdout, /"text": "done \\u001b\[2J"/);
    assert.ok(!r.stdout.includes('\x1b'), 'no raw escape reaches the terminal');
  });

  test('binary, capped and dropped bodies are described, not printed; hostile paths are escaped', async () => {
    const b = await cli(['exchange', ids.binary!, '--data-dir', D]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, new RegExp(`^< response body: 10, binary, sha256 [0-9a-f]{64}; \`airlock exchange ${ids.binary} --body response > FILE\` writes it$`, 'm'));
    const c = await cli(['exchange', ids.capped!, '--data-dir', D]);
    assert.match(c.stdout, /^< response body: first 10 of 4\.8M kept \(bodyCaptureBytes\), sha256 (ab){32}$/m);
    assert.match(c.stdout, /^ {2}first part$/m);
    const d = await cli(['exchange', ids.dropped!, '--data-dir', D]);
    assert.match(d.stdout, /^< response body: 4\.0K sent, not kept \(capture off, an encoding that could not be checked for secrets, or pruned to stay within bodyStoreBytes\), sha256 (cd){32}$/m);
    assert.match(d.stdout, /\\x1b\[31mRED\\x1b\[0m/);
    assert.ok(!d.stdout.includes('\x1b') && !d.stdout.includes('\u202e'));
  });

  test('--body writes the raw bytes as sent (decompressed from the store, still gzip-encoded if the sender encoded them)', async () => {
    const { gunzipSync } = await import('node:zlib');
    const req = await runCommand(process.execPath, [AIRLOCK_BIN, 'exchange', ids.model!, '--body', 'request', '--data-dir', D], { env: cleanCliEnv(), cwd: REPO_ROOT, timeoutMs: 30_000 });
    assert.equal(req.code, 0, req.stderr);
    assert.deepEqual(req.stdoutBuffer, prompt);
    const res = await runCommand(process.execPath, [AIRLOCK_BIN, 'exchange', `#${ids.model!}`, '--body', 'response', '--data-dir', D], { env: cleanCliEnv(), cwd: REPO_ROOT, timeoutMs: 30_000 });
    assert.deepEqual(JSON.parse(gunzipSync(res.stdoutBuffer).toString()), answer);
    const bin = await runCommand(process.execPath, [AIRLOCK_BIN, 'exchange', ids.binary!, '--body', 'response', '--data-dir', D], { env: cleanCliEnv(), cwd: REPO_ROOT, timeoutMs: 30_000 });
    assert.deepEqual(bin.stdoutBuffer, binary);
    const capped = await cli(['exchange', ids.capped!, '--body', 'response', '--data-dir', D]);
    assert.equal(capped.code, 0);
    assert.equal(capped.stdout, 'first part');
    assert.match(capped.stderr, /only the first 10 of 5000000 bytes were kept/);
  });

  test('--json: the record with bodies in base64; mistakes get one line', async () => {
    const r = await cli(['exchange', ids.model!, '--json', '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    const x = JSON.parse(r.stdout) as { id: string; requestBody: string; responseBody: string | null; requestBodySha256: string };
    assert.equal(x.id, ids.model);
    assert.deepEqual(Buffer.from(x.requestBody, 'base64'), prompt);
    const dropped = await cli(['exchange', ids.dropped!, '--body', 'response', '--data-dir', D]);
    assert.equal(dropped.code, 1);
    assertOneLine(dropped, /the response body of exchange \d+ was not kept \(4096 bytes, sha256 (cd){32}\)/);
    assertOneLine(await cli(['exchange', '999999', '--data-dir', D]), /no exchange 999999 in the record/);
    assertOneLine(await cli(['exchange', 'abc', '--data-dir', D]), /exchange id is a positive whole number/);
    assertOneLine(await cli(['exchange', ids.model!, '--body', 'both', '--data-dir', D]), /--body must be one of request, response/);
    assertOneLine(await cli(['exchange', ids.model!, '--body', 'request', '--json', '--data-dir', D]), /do not go together/);
    assertOneLine(await cli(['exchange', '--data-dir', D]), /usage: airlock exchange ID/);
  });
});

describe('airlock exchanges export (for auditors)', () => {
  let D: string;
  let seeds: Seed[];
  before(async () => {
    ({ dir: D, seeds } = await seededDir('airlock-cli-export-'));
  });

  test('JSON Lines, oldest first, every exchange; --agent, --since and --until narrow it; each export is audited', async () => {
    const all = await cli(['exchanges', 'export', '--data-dir', D]);
    assert.equal(all.code, 0, all.stderr);
    const rows = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as ExchangeView);
    assert.deepEqual(rows.map((r) => r.id), seeds.map((s) => s.id));
    assert.ok(!all.stdout.includes('\x1b'), 'escapes stay escaped');
    assert.equal(rows.find((r) => r.path === HOSTILE_PATH)?.path, HOSTILE_PATH, 'and parse back to what was recorded');
    const claude = await cli(['exchanges', 'export', '--agent', 'claude', '--data-dir', D]);
    assert.deepEqual(claude.stdout.trim().split('\n').map((l) => (JSON.parse(l) as ExchangeView).id), seeds.filter((s) => s.agent === 'claude').map((s) => s.id));
    // Exchanges start at 09:00:25 + i s: [09:00:30, 09:00:33) holds i = 5, 6, 7.
    const window = await cli(['exchanges', 'export', '--since', '2026-03-01T09:00:30Z', '--until', '2026-03-01T09:00:33Z', '--data-dir', D]);
    assert.deepEqual(window.stdout.trim().split('\n').map((l) => (JSON.parse(l) as ExchangeView).id), seeds.slice(5, 8).map((s) => s.id));
    const store = openStore(join(D, 'airlock.db'));
    try {
      const events = store.audit.list().filter((e) => e.action === 'exchanges.exported');
      assert.equal(events.length, 3);
      assert.deepEqual(events[2]!.details, {
        agent: null, count: 3, out: 'stdout', since: '2026-03-01T09:00:30.000Z', until: '2026-03-01T09:00:33.000Z',
        sha256: createHash('sha256').update(window.stdout).digest('hex'), bytes: Buffer.byteLength(window.stdout),
      });
      assert.equal(store.audit.verify().ok, true);
    } finally {
      store.close();
    }
  });

  test('audit verify --export: an export file is shown to be what its audited export wrote; one changed byte, or a file never exported, fails', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const exchanges = join(D, 'vouched.jsonl');
    const auditFile = join(D, 'audit.jsonl');
    assert.equal((await cli(['exchanges', 'export', '--out', exchanges, '--data-dir', D])).code, 0);
    // The auditor's view: the audit export (which holds the exchanges export's event) and the exchanges file.
    assert.equal((await cli(['audit', 'export', '--out', auditFile, '--data-dir', D])).code, 0);
    const fromFile = await cli(['audit', 'verify', '--file', auditFile, '--export', exchanges]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    // (Another test of this group may have exported the same rows: the same bytes, named as exported again.)
    assert.match(fromFile.stdout, /^ok \d+ events, head [0-9a-f]{64}\n.+vouched\.jsonl: the jsonl export of 14 exchanges made \S+ by \S+ \(audit seq \d+\), unchanged(; the same bytes were exported again at audit seq [\d, ]+)?\n$/);
    // From the database: the audit export itself is also vouched for (its event came after it).
    const fromDb = await cli(['audit', 'verify', '--export', exchanges, '--export', auditFile, '--data-dir', D]);
    assert.equal(fromDb.code, 0, fromDb.stderr);
    assert.match(fromDb.stdout, /audit\.jsonl: the jsonl export of the audit log made .+, unchanged/);
    // One byte changed in the exchanges file: not what was exported.
    const text = readFileSync(exchanges, 'utf8');
    const changed = join(D, 'changed.jsonl');
    writeFileSync(changed, text.replace('"status":200', '"status":201'));
    assert.notEqual(readFileSync(changed, 'utf8'), text);
    const bad = await cli(['audit', 'verify', '--file', auditFile, '--export', exchanges, '--export', changed]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /vouched\.jsonl: .+unchanged.*\n.+changed\.jsonl: not an export this audit log recorded \(sha256 [0-9a-f]{64}, \d+ bytes\): changed since, or from elsewhere\n$/);
    // A chain that does not hold vouches for nothing: only its verdict is printed.
    const lines = readFileSync(auditFile, 'utf8').split('\n');
    writeFileSync(join(D, 'audit-cut.jsonl'), [lines[0], ...lines.slice(2)].join('\n'));
    const broken = await cli(['audit', 'verify', '--file', join(D, 'audit-cut.jsonl'), '--export', exchanges]);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /^broken at seq \d+/);
    assert.doesNotMatch(broken.stdout, /unchanged/);
    const missing = await cli(['audit', 'verify', '--export', join(D, 'no-such.jsonl'), '--data-dir', D]);
    assert.equal(missing.code, 1);
    assertOneLine(missing, /cannot read the export .+no-such\.jsonl \(ENOENT/);
    // The same query exported again gives the same bytes: both exports are named.
    const twice = join(D, 'twice.jsonl');
    assert.equal((await cli(['exchanges', 'export', '--out', twice, '--data-dir', D])).code, 0);
    assert.equal(readFileSync(twice, 'utf8'), text);
    const both = await cli(['audit', 'verify', '--export', twice, '--data-dir', D]);
    assert.equal(both.code, 0, both.stderr);
    assert.match(both.stdout, /twice\.jsonl: the jsonl export of 14 exchanges made \S+ by \S+ \(audit seq (\d+)\), unchanged; the same bytes were exported again at audit seq [\d, ]+\n$/);
    const misplaced = await cli(['audit', 'export', '--export', exchanges, '--data-dir', D]);
    assert.equal(misplaced.code, 2);
    assertOneLine(misplaced, /--export is an option of `airlock audit verify`/);
  });

  test('CSV to a file (0600): a header, one row per exchange, spreadsheet formulas defused', async () => {
    const file = join(D, 'exchanges.csv');
    const r = await cli(['exchanges', 'export', '--out', file, '--data-dir', D]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^14 exchanges written to .+exchanges\.csv\n$/);
    const { readFileSync, statSync } = await import('node:fs');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const lines = readFileSync(file, 'utf8').split('\r\n');
    assert.equal(lines[0], 'id,started_at,ended_at,agent,session_id,method,url,kind,verdict,rule_id,status,error,request_bytes,response_bytes,total_ms,review_id');
    assert.equal(lines.length, 1 + 14 + 1, 'header, 14 rows, and the final line end');
    assert.match(lines[1]!, new RegExp(`^${seeds[0]!.id},2026-03-01T09:00:25\\.000Z,`));
    const { csvCell } = await import('../../main/cli/format-record');
    assert.equal(csvCell('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`);
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvCell('-2+3'), "'-2+3");
    assert.equal(csvCell(-3), '-3', 'numbers stay numbers');
    assert.equal(csvCell(null), '');
    const bad = await cli(['exchanges', 'export', '--since', 'last week', '--data-dir', D]);
    assert.equal(bad.code, 2);
    assertOneLine(bad, /--since "last week" is not a date/);
  });
});
