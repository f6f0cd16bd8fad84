import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sqlite } from '../../main/store/sqlite';
import type { ExchangeRecord } from '../../main/store';
import { exchange, tempStores } from './helpers';
import { FLUSH_ROWS } from '../../main/store/exchanges';

const Database = sqlite();

const fresh = tempStores('airlock-exchanges-');

test('record is batched: not on disk until flushed (or the 100 ms timer fires), then visible', async () => {
  const { store, file } = await fresh();
  const other = new Database(file, { readonly: true });
  const onDisk = () => (other.prepare('SELECT count(*) AS n FROM exchanges').get() as { n: number }).n;
  try {
    store.exchanges.record(exchange('1'));
    store.exchanges.record(exchange('2'));
    assert.equal(onDisk(), 0, 'record() does not write synchronously');
    store.exchanges.flush();
    assert.equal(onDisk(), 2);

    store.exchanges.record(exchange('3'));
    assert.equal(onDisk(), 2);
    const deadline = Date.now() + 2000;
    while (onDisk() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(onDisk(), 3, 'the timer flushed the batch');

    for (let i = 0; i < FLUSH_ROWS; i++) store.exchanges.record(exchange(`${1000 + i}`));
    assert.equal(onDisk(), 3);
    await new Promise((r) => setImmediate(r));
    // Handed to the write worker on the next turn; committed by it shortly after (bounded wait).
    const deadline2 = Date.now() + 2000;
    while (onDisk() < 3 + FLUSH_ROWS && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 5));
    assert.equal(onDisk(), 3 + FLUSH_ROWS, `${FLUSH_ROWS} queued rows are written right after the next turn of the event loop`);
    assert.equal(store.exchanges.count(), 3 + FLUSH_ROWS);
  } finally {
    other.close();
  }
});

test('round-trips every field, including capped bodies; recording an id again replaces it', async () => {
  const { store } = await fresh();
  const reqBody = Buffer.alloc(4096, 0xab);
  const rec = exchange('1', {
    requestBody: reqBody.subarray(0, 1024),
    requestBodyComplete: false,
    requestBytes: 4096,
    requestBodySha256: createHash('sha256').update(reqBody).digest('hex'),
    responseBody: null,
    responseHeaders: null,
    responseBodyComplete: true,
    requestHeaders: { accept: ['a', 'b'], host: 'github.com' },
    timings: { connectMs: null, tlsMs: 2.25, upstreamMs: null, totalMs: 7 },
    sessionId: null,
    verdict: null,
    ruleId: null,
    explanation: null,
    status: null,
    error: 'upstream reset',
    reviewId: 'r1',
  });
  store.exchanges.record(rec);
  assert.deepEqual(store.exchanges.get('1'), rec, 'get() flushes first and returns what was recorded');
  assert.equal(store.exchanges.get('999'), null);
  assert.equal(store.exchanges.get('missing'), null, 'not an id: simply not found');

  const done = { ...rec, status: 201, responseBody: Buffer.from('done'), error: null };
  store.exchanges.record(done);
  // A body kept whole is recorded without a hash; reading derives it from the stored bytes.
  assert.deepEqual(store.exchanges.get('1'), { ...done, responseBodySha256: createHash('sha256').update('done').digest('hex') });
  assert.equal(store.exchanges.count(), 1);
  const v = store.exchanges.list({})[0]!;
  assert.equal(v.decision, null);
  assert.equal(v.reviewId, 'r1');
  assert.deepEqual(v.timings, { totalMs: 7, upstreamMs: null });
});

test('list: newest first (by id), limit, paging with before', async () => {
  const { store } = await fresh();
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) {
    const id = String((i + 1) * 10);
    ids.push(id);
    store.exchanges.record(exchange(id, { startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, Math.floor(i / 3))).toISOString() }));
  }
  const newestFirst = [...ids].reverse();
  const first = store.exchanges.list({ limit: 10 });
  assert.deepEqual(first.map((e) => e.id), newestFirst.slice(0, 10));
  assert.deepEqual(first[0]!.decision, { verdict: 'review', ruleId: 'push-needs-review', explanation: 'Pushes are reviewed.' });
  const second = store.exchanges.list({ limit: 10, before: first.at(-1)!.id });
  assert.deepEqual(second.map((e) => e.id), newestFirst.slice(10, 20));
  const third = store.exchanges.list({ limit: 10, before: second.at(-1)!.id });
  assert.deepEqual(third.map((e) => e.id), newestFirst.slice(20));
  assert.deepEqual(store.exchanges.list({ before: third.at(-1)!.id }), []);
  assert.equal(store.exchanges.list({}).length, 25);
  // an id no longer present: "id lower than" (the contract's wording)
  assert.deepEqual(store.exchanges.list({ before: '60', limit: 100 }).map((e) => e.id).reverse(), ids.slice(0, 5));
  assert.deepEqual(store.exchanges.list({ before: '55' }).map((e) => e.id).reverse(), ids.slice(0, 5));
  assert.throws(() => store.exchanges.list({ before: 'x05' }), /not an exchange id/);
});

test('list filters by agent, host, classification, decision and session, each through its own index', async () => {
  const { store, file } = await fresh();
  const agents = ['alice', 'bob'];
  const hosts = ['github.com', 'api.openai.com', 'registry.npmjs.org'];
  const kinds = ['git-push', 'git-fetch', 'http-api', 'other'] as const;
  const verdicts = ['allow', 'review', 'deny'] as const;
  const all: ExchangeRecord[] = [];
  for (let i = 1; i <= 120; i++) {
    const r = exchange(String(i), {
      agent: agents[i % 2]!,
      host: hosts[i % 3]!,
      kind: kinds[i % 4]!,
      verdict: verdicts[i % 5 === 0 ? 2 : i % 2]!,
      sessionId: `s${i % 7}`,
    });
    all.push(r);
    store.exchanges.record(r);
  }
  const expect = (pred: (r: ExchangeRecord) => boolean) => all.filter(pred).map((r) => r.id).reverse();
  const page = (q: Parameters<typeof store.exchanges.list>[0]) => {
    // walk every page of 7 to check the cursor with each filter
    const out: string[] = [];
    let before: string | undefined;
    for (let n = 0; n < 50; n++) {
      const rows = store.exchanges.list({ ...q, limit: 7, before });
      out.push(...rows.map((r) => r.id));
      if (rows.length < 7) break;
      before = rows.at(-1)!.id;
    }
    return out;
  };
  assert.deepEqual(page({ agent: 'bob' }), expect((r) => r.agent === 'bob'));
  assert.deepEqual(page({ host: 'api.openai.com' }), expect((r) => r.host === 'api.openai.com'));
  assert.deepEqual(page({ kind: 'git-push' }), expect((r) => r.kind === 'git-push'));
  assert.deepEqual(page({ verdict: 'deny' }), expect((r) => r.verdict === 'deny'));
  assert.deepEqual(page({ sessionId: 's3' }), expect((r) => r.sessionId === 's3'));
  assert.deepEqual(
    page({ agent: 'alice', host: 'github.com', verdict: 'allow' }),
    expect((r) => r.agent === 'alice' && r.host === 'github.com' && r.verdict === 'allow'),
  );
  assert.deepEqual(store.exchanges.list({ agent: 'nobody' }), []);

  const raw = new Database(file, { readonly: true });
  try {
    const plan = (where: string) =>
      (raw.prepare(`EXPLAIN QUERY PLAN SELECT id FROM exchanges WHERE ${where} AND id < 100 ORDER BY id DESC LIMIT 50`).all() as { detail: string }[])
        .map((r) => r.detail)
        .join('; ');
    for (const [col, index] of [['agent', 'exchanges_agent'], ['host', 'exchanges_host'], ['kind', 'exchanges_kind'], ['verdict', 'exchanges_verdict'], ['session_id', 'exchanges_session']]) {
      const p = plan(`${col} = 'x'`);
      assert.match(p, new RegExp(`USING (COVERING )?INDEX ${index}\\b`), `${col}: ${p}`);
      assert.doesNotMatch(p, /TEMP B-TREE/, `${col}: no sort step: ${p}`);
    }
    assert.doesNotMatch(plan('1 = 1'), /TEMP B-TREE/);
  } finally {
    raw.close();
  }
});

for (const writer of ['inline', 'worker'] as const) test(`nextId (${writer} writer): increasing, unique across two stores on one file, never reused after a prune and reopen`, async () => {
  const t = await fresh();
  const { openStore } = await import('../../main/store');
  const { ID_BLOCK } = await import('../../main/store/exchanges');
  t.store.close();
  t.store = openStore(t.file, { writer });
  const other = openStore(t.file);
  const seen = new Set<string>();
  try {
    let last = 0;
    for (let i = 0; i < 2 * ID_BLOCK + 5; i++) {
      const a = t.store.exchanges.nextId();
      if (i % 100 === 0) t.store.exchanges.record(exchange(a)); // batches in flight while blocks are reserved
      const b = other.exchanges.nextId();
      assert.ok(Number(a) > last, 'increasing');
      last = Number(a);
      for (const id of [a, b]) {
        assert.match(id, /^[1-9][0-9]*$/);
        assert.ok(!seen.has(id), `duplicate ${id}`);
        seen.add(id);
      }
    }
    const id = t.store.exchanges.nextId();
    t.store.exchanges.record(exchange(id, { startedAt: '2000-01-01T00:00:00.000Z' }));
    assert.equal(t.store.exchanges.prune(1), 22);
    assert.equal(t.store.exchanges.count(), 0);
  } finally {
    other.close();
    t.store.close();
  }
  const again = openStore(t.file);
  try {
    const next = Number(again.exchanges.nextId());
    assert.ok(next > Math.max(...[...seen].map(Number)), 'a reopened store continues after every id handed out before');
  } finally {
    again.close();
  }
});

test('sessions.list: newest first, by agent, with exchange counts and paging', async () => {
  const { store } = await fresh();
  for (let i = 0; i < 5; i++) {
    store.sessions.start({ id: `s${i}`, agent: i % 2 ? 'bob' : 'alice', clientAddress: `127.0.0.1:${5000 + i}`, startedAt: `2026-01-01T00:00:0${i}.000Z` });
  }
  store.sessions.end('s0', '2026-01-01T00:01:00.000Z');
  for (let i = 1; i <= 6; i++) store.exchanges.record(exchange(String(i), { sessionId: i <= 4 ? 's0' : 's3' }));
  const all = store.sessions.list();
  assert.deepEqual(all.map((s) => s.id), ['s4', 's3', 's2', 's1', 's0']);
  assert.deepEqual(all.map((s) => s.exchangeCount), [0, 2, 0, 0, 4]);
  assert.equal(all.at(-1)!.endedAt, '2026-01-01T00:01:00.000Z');
  assert.deepEqual(store.sessions.list({ agent: 'bob' }).map((s) => s.id), ['s3', 's1']);
  assert.deepEqual(store.sessions.list({ limit: 2 }).map((s) => s.id), ['s4', 's3']);
  assert.deepEqual(store.sessions.list({ limit: 2, before: 's3' }).map((s) => s.id), ['s2', 's1']);
  assert.deepEqual(store.sessions.list({ agent: 'alice', before: 's2' }).map((s) => s.id), ['s0']);
  assert.throws(() => store.sessions.list({ before: 'gone' }), /No session gone/);
});

test('masks credential headers (by name), secrets in header values, path (and key/token query values) and bodies; a binary body keeps its length', async () => {
  const { store, file } = await fresh();
  const secret = 'ghp_SECRETTOKEN123';
  store.setSecrets([secret, '', 'ab']);
  const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(secret)]);
  store.exchanges.record(
    exchange('1', {
      path: `/api?token=${secret}&key=AIzaFAKEgoogleKEY&page=2`,
      requestHeaders: {
        Authorization: 'Basic Zm9vOmJhcg==',
        'proxy-authorization': 'Bearer x',
        Cookie: 'a=b',
        'X-Api-Key': 'k',
        'x-goog-api-key': 'AIzaFAKEgoogleKEY',
        'x-custom': `token ${secret} here`,
        'x-list': ['plain', `${secret}`],
      },
      responseHeaders: { 'Set-Cookie': ['s=1', 's=2'], 'content-type': 'text/plain' },
      requestBody: Buffer.from(`{"token":"${secret}","again":"${secret}","é":1}`),
      responseBody: binary,
    }),
  );
  const got = store.exchanges.get('1')!;
  assert.deepEqual(got.requestHeaders, {
    Authorization: '[masked]',
    'proxy-authorization': '[masked]',
    Cookie: '[masked]',
    'X-Api-Key': '[masked]',
    'x-goog-api-key': '[masked]',
    'x-custom': 'token [masked] here',
    'x-list': ['plain', '[masked]'],
  });
  assert.deepEqual(got.responseHeaders, { 'Set-Cookie': ['[masked]', '[masked]'], 'content-type': 'text/plain' });
  assert.equal(got.path, '/api?token=[masked]&key=[masked]&page=2');
  assert.equal(got.requestBody!.toString('utf8'), '{"token":"[masked]","again":"[masked]","é":1}');
  assert.deepEqual(got.responseBody, Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.alloc(secret.length, '*')]), 'a body that is not UTF-8 text has the secret\'s bytes replaced, same length');
  // The stored request body is masked, so its hash is taken from the bytes that were sent, at recording time.
  const sent = `{"token":"${secret}","again":"${secret}","é":1}`;
  assert.equal(got.requestBodySha256, createHash('sha256').update(sent).digest('hex'));
  assert.equal(got.responseBodySha256, createHash('sha256').update(binary).digest('hex'));
  const raw = new Database(file, { readonly: true });
  try {
    const row = raw.prepare('SELECT request_body_sha256 AS req, response_body_sha256 AS res FROM exchanges WHERE id = 1').get() as { req: string | null; res: string | null };
    assert.equal(row.req, got.requestBodySha256, 'the masked body\'s hash is in the row');
    assert.equal(row.res, got.responseBodySha256, 'the masked binary body\'s hash (of the bytes sent) is in the row too');
  } finally {
    raw.close();
  }
});

test("an exchange's own credentials (its sensitive headers' values) are masked where an upstream echoes them, though no credential is stored", async () => {
  const { store } = await fresh();
  const apiKey = 'AGENTHDR-secret-9911';
  const bearer = 'sk-agent-own-bearer-0123456789';
  const session = 'sess-cookie-value-77aa';
  const basicPass = 'p4ssw0rd-of-the-agent';
  store.exchanges.record(
    exchange('1', {
      requestHeaders: {
        'x-api-key': apiKey,
        authorization: `Bearer ${bearer}`,
        cookie: `theme=dark; session=${session}`,
        'x-other-auth': `Basic ${Buffer.from(`me:${basicPass}`).toString('base64')}`,
        'x-plain': 'short',
      },
      responseHeaders: { 'content-type': 'application/json', 'x-debug-echo': `you sent ${apiKey}` },
      responseBody: Buffer.from(JSON.stringify({ headers: { 'x-api-key': apiKey, authorization: `Bearer ${bearer}` }, cookie: session, pass: basicPass, theme: 'dark' })),
    }),
  );
  const got = store.exchanges.get('1')!;
  const body = got.responseBody!.toString('utf8');
  for (const secret of [apiKey, bearer, session, basicPass]) assert.ok(!body.includes(secret), `${secret} in ${body}`);
  assert.match(body, /"theme":"dark"/, 'a short cookie value is not taken for a credential');
  assert.equal(got.responseHeaders!['x-debug-echo'], 'you sent [masked]');
  // Another exchange without those headers: its body is not searched for them (they are per exchange).
  store.exchanges.record(exchange('2', { responseBody: Buffer.from(`echo ${apiKey}`) }));
  assert.equal(store.exchanges.get('2')!.responseBody!.toString(), `echo ${apiKey}`);
});

test('masks a capped text body whose last character was cut in half', async () => {
  const { store } = await fresh();
  store.setSecrets(['sekrit-value']);
  const full = Buffer.from('x sekrit-value y €');
  const cut = full.subarray(0, full.length - 1); // half of the euro sign
  store.exchanges.record(exchange('1', { requestBody: cut, requestBodyComplete: false }));
  const got = store.exchanges.get('1')!.requestBody!;
  assert.deepEqual(got, Buffer.concat([Buffer.from('x [masked] y '), full.subarray(full.length - 3, full.length - 1)]));
});

test('sessions are queued with the batch and readable after flush', async () => {
  const { store } = await fresh();
  store.sessions.start({ id: 's1', agent: 'alice', clientAddress: '127.0.0.1:5000', startedAt: '2026-01-01T00:00:00.000Z', token: 'abcdef012345', via: 'run aider (pid 7)' });
  store.sessions.start({ id: 's2', agent: 'alice', clientAddress: '127.0.0.1:5001', startedAt: '2026-01-01T00:00:01.000Z' });
  store.sessions.end('s1', '2026-01-01T00:01:00.000Z');
  assert.deepEqual(store.sessions.get('s1'), {
    id: 's1',
    agent: 'alice',
    clientAddress: '127.0.0.1:5000',
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:01:00.000Z',
    token: 'abcdef012345',
    via: 'run aider (pid 7)',
  });
  assert.equal(store.sessions.get('s2')?.via, null, 'a session started without a token label');
  assert.equal(store.sessions.get('nope'), null);
});

test('prune deletes old exchanges and their bodies, and audits it', async () => {
  const { store, file } = await fresh();
  store.exchanges.record(exchange('1', { startedAt: '2025-12-01T00:00:00.000Z' }));
  store.exchanges.record(exchange('2', { startedAt: '2026-01-05T00:00:00.000Z' }));
  store.exchanges.limitBodies(1024 ** 3);
  const before = store.exchanges.storedBodyBytes()!;
  const n = store.exchanges.prune(30, new Date('2026-01-10T00:00:00.000Z'));
  assert.equal(n, 1);
  assert.deepEqual(store.exchanges.list({}).map((e) => e.id), ['2']);
  assert.ok(before > 0);
  assert.equal(store.exchanges.storedBodyBytes(), before / 2, 'the body budget counts what the age prune removed');
  const raw = new Database(file, { readonly: true });
  assert.deepEqual(raw.prepare('SELECT id, length(request_body) AS n FROM exchanges').all(), [{ id: 2, n: 12 }], 'the old row and its bodies are gone');
  raw.close();
  const ev = store.audit.head()!;
  assert.equal(ev.action, 'retention.pruned');
  assert.deepEqual(ev.details, { count: 1, cutoff: '2025-12-11T00:00:00.000Z', olderThanDays: 30, throughId: 1 });
  assert.equal(store.audit.verify().ok, true);
});

test('close flushes pending writes; recording after close throws', async () => {
  const t = await fresh();
  t.store.exchanges.record(exchange('1'));
  t.store.close();
  assert.throws(() => t.store.exchanges.record(exchange('2')), /closed/);
  const raw = new Database(t.file, { readonly: true });
  assert.equal((raw.prepare('SELECT count(*) AS n FROM exchanges').get() as { n: number }).n, 1);
  raw.close();
});

test('a bad row does not lose the rest of its batch', async () => {
  const { dir } = await fresh();
  const { openStore } = await import('../../main/store');
  const errors: unknown[] = [];
  const store = openStore(`${dir}/other.db`, { onError: (e) => errors.push(e) });
  try {
    store.exchanges.record(exchange('1'));
    store.exchanges.record(exchange('2', { agent: null as unknown as string }));
    store.exchanges.record(exchange('3'));
    store.exchanges.flush();
    assert.equal(store.exchanges.count(), 2);
    assert.equal(errors.length, 1);
  } finally {
    store.close();
  }
});

test('micro-benchmark: 20 000 exchanges with 1 KiB bodies, enqueue vs flush', async () => {
  const { dir } = await fresh();
  const { openStore } = await import('../../main/store');
  const body = Buffer.alloc(1024, 'a');
  const recs = Array.from({ length: 20_000 }, (_, i) =>
    exchange(String(i + 1), { requestBody: body, responseBody: body, startedAt: new Date(Date.UTC(2026, 0, 1) + i).toISOString() }),
  );
  const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;

  // (a) one burst, memory bound raised so nothing is written until flush()
  const burst = openStore(`${dir}/bench-burst.db`, { maxQueuedWrites: 50_000 });
  burst.setSecrets(['some-secret-value']);
  let t0 = process.hrtime.bigint();
  for (const r of recs) burst.exchanges.record(r);
  let t1 = process.hrtime.bigint();
  burst.exchanges.flush();
  let t2 = process.hrtime.bigint();
  console.log(
    `store bench (burst): 20000 exchanges, 2 x 1 KiB bodies each: enqueue ${ms(t0, t1).toFixed(1)} ms ` +
      `(${((ms(t0, t1) * 1000) / 20000).toFixed(2)} µs/row), flush ${ms(t1, t2).toFixed(1)} ms ` +
      `(${Math.round(20000 / (ms(t1, t2) / 1000))} rows/s)`,
  );
  assert.equal(burst.exchanges.count(), 20_000);
  burst.close();

  // (b) default settings, 200 records per event-loop turn (as a busy proxy would): time inside record() vs elapsed
  const live = openStore(`${dir}/bench-live.db`);
  let inRecord = 0n;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < recs.length; i += 200) {
    const a = process.hrtime.bigint();
    for (let j = i; j < i + 200; j++) live.exchanges.record(recs[j]!);
    inRecord += process.hrtime.bigint() - a;
    await new Promise((r) => setImmediate(r));
  }
  t1 = process.hrtime.bigint();
  live.exchanges.flush();
  t2 = process.hrtime.bigint();
  console.log(
    `store bench (200/turn): time in record() ${(Number(inRecord) / 1e6).toFixed(1)} ms, ` +
      `elapsed incl. background batch flushes ${ms(t0, t1).toFixed(1)} ms, final flush ${ms(t1, t2).toFixed(1)} ms`,
  );
  assert.equal(live.exchanges.count(), 20_000);
  live.close();
});

test('the worker-thread writer records, reports bad rows synchronously on flush, and closes cleanly', async () => {
  const { dir } = await fresh();
  const { openStore } = await import('../../main/store');
  const errors: unknown[] = [];
  const store = openStore(`${dir}/worker.db`, { writer: 'worker', onError: (e) => errors.push(e) });
  try {
    store.sessions.start({ id: 's1', agent: 'a', clientAddress: '127.0.0.1', startedAt: new Date().toISOString() });
    store.exchanges.record(exchange('1', { sessionId: 's1', responseBody: Buffer.from('hello') }));
    store.exchanges.record(exchange('2', { agent: null as unknown as string }));
    store.exchanges.record(exchange('3'));
    store.exchanges.flush();
    assert.equal(store.exchanges.count(), 2);
    assert.equal(errors.length, 1);
    assert.equal(store.exchanges.get('1')?.responseBody?.toString(), 'hello');
    assert.equal(store.sessions.get('s1')?.agent, 'a');
  } finally {
    store.close();
  }
  const again = openStore(`${dir}/worker.db`);
  try {
    assert.equal(again.exchanges.count(), 2, 'everything committed before close');
  } finally {
    again.close();
  }
});

for (const fault of ['start', 'batch'] as const) {
  test(`a write worker that fails (${fault === 'start' ? 'at start' : 'at its third batch'}) loses nothing: its uncommitted writes come back and recording continues inline`, async () => {
    const { dir } = await fresh();
    const { openStore } = await import('../../main/store');
    const errors: Error[] = [];
    const store = openStore(`${dir}/failing.db`, { writer: 'worker', testWriterFault: fault, onError: (e) => errors.push(e as Error) });
    const ids: string[] = [];
    try {
      store.sessions.start({ id: 's1', agent: 'a', clientAddress: '127.0.0.1', startedAt: new Date().toISOString() });
      // Several hand-overs (one per few ms), so the batch fault hits with writes already committed,
      // some queued in the worker and some not yet posted.
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 20; i++) {
          const id = store.exchanges.nextId();
          ids.push(id);
          store.exchanges.record(exchange(id, { sessionId: 's1', path: `/r${round}/${i}` }));
        }
        await new Promise((r) => setTimeout(r, 15));
      }
      store.sessions.end('s1', new Date().toISOString());
      store.exchanges.flush();
      assert.equal(store.exchanges.count(), 120, 'every exchange recorded');
      for (const id of [ids[0]!, ids[59]!, ids[119]!]) assert.ok(store.exchanges.get(id), `exchange ${id} is there`);
      assert.ok(store.sessions.get('s1')?.endedAt, 'the session end is recorded');
      const failure = errors.find((e) => /recording continues on the proxy's thread/.test(e.message));
      assert.ok(failure, `the failure is reported: ${errors.map((e) => e.message).join(' | ')}`);
      assert.match(failure.message, new RegExp(`test fault: the write worker fails ${fault === 'start' ? 'at start' : 'at its third batch'}`));
      assert.equal(errors.length, 1, 'reported once, and no row failed');
      // Still recording, and still handing out new ids, after the failure.
      const later = store.exchanges.nextId();
      store.exchanges.record(exchange(later));
      store.exchanges.flush();
      assert.ok(store.exchanges.get(later));
    } finally {
      store.close();
    }
    const again = openStore(`${dir}/failing.db`);
    try {
      assert.equal(again.exchanges.count(), 121);
      assert.equal(new Set(ids).size, 120, 'ids stayed unique across the switch');
    } finally {
      again.close();
    }
  });
}

test('large text bodies are stored gzip-compressed and read back byte for byte; small, encoded and incompressible ones as they passed (masked inside)', async () => {
  const { dir } = await fresh();
  const { openStore } = await import('../../main/store');
  // A model request: the conversation as JSON, hundreds of KB, with a credential in it.
  const prompt = Buffer.from(JSON.stringify({ model: 'm', messages: Array.from({ length: 400 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `step ${i}: edit main/x.ts, run the tests, read the failure, ${'fix the import and try again. '.repeat(8)}` })) }) + ' token=ghp_SECRETSECRETSECRET');
  const random = (await import('node:crypto')).randomBytes(64 * 1024);
  const gzipped = (await import('node:zlib')).gzipSync(prompt);
  for (const writer of ['inline', 'worker'] as const) {
    const file = `${dir}/${writer}.db`;
    const store = openStore(file, { writer });
    try {
      store.setSecrets(['ghp_SECRETSECRETSECRET']);
      const recs = [
        exchange('1', { requestBody: prompt, responseBody: random }),
        exchange('2', { requestBody: Buffer.from('{"small":true}'), responseBody: gzipped, responseHeaders: { 'content-encoding': 'gzip' } }),
      ];
      for (const r of recs) store.exchanges.record(r);
      // Compressed on the thread pool: the batch timer, not a flush, writes them (bounded wait).
      const other = new Database(file, { readonly: true });
      const deadline = Date.now() + 5000;
      const onDisk = () => (other.prepare('SELECT count(*) AS n FROM exchanges').get() as { n: number }).n;
      while (onDisk() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(onDisk(), 2, `${writer}: written without a flush`);
      const rows = other.prepare('SELECT id, length(request_body) AS req, request_body_encoding AS reqEnc, length(response_body) AS res, response_body_encoding AS resEnc FROM exchanges ORDER BY id').all();
      other.close();
      assert.equal((rows[0] as { reqEnc: string }).reqEnc, 'gzip', writer);
      assert.ok((rows[0] as { req: number }).req < prompt.length / 3, `${writer}: ${JSON.stringify(rows[0])} of ${prompt.length}`);
      assert.deepEqual(rows.map((r) => { const x = r as { reqEnc: string | null; resEnc: string | null }; return [x.reqEnc, x.resEnc]; }),
        [['gzip', null], [null, null]], `${writer}: random bytes, a small body and a gzip-encoded response are kept as they passed`);
      const got = store.exchanges.get('1')!;
      const head = prompt.subarray(0, prompt.indexOf(' token='));
      assert.deepEqual(got.requestBody!.subarray(0, head.length), head, writer);
      assert.match(got.requestBody!.subarray(head.length).toString(), /^ token=\S+$/, writer);
      assert.ok(!got.requestBody!.includes('ghp_SECRETSECRETSECRET'), `${writer}: masked before it was compressed`);
      assert.equal(got.requestBodySha256, createHash('sha256').update(prompt).digest('hex'), `${writer}: the hash is of the bytes sent`);
      assert.deepEqual(got.responseBody, random);
      assert.equal(got.responseBodySha256, createHash('sha256').update(random).digest('hex'), 'a whole body\'s hash is derived from the decompressed bytes');
      // A gzip-encoded body is checked decoded: the credential in it is masked, and it is stored encoded again.
      const encoded = store.exchanges.get('2')!;
      const { gunzipSync } = await import('node:zlib');
      assert.equal(gunzipSync(encoded.responseBody!).toString(), prompt.toString().replace('ghp_SECRETSECRETSECRET', '[masked]'), writer);
      assert.equal(encoded.responseBodySha256, createHash('sha256').update(gzipped).digest('hex'), `${writer}: the hash is of the bytes sent`);
      // A flush right after recording finishes the compression on the spot.
      store.exchanges.record(exchange('3', { requestBody: prompt }));
      assert.deepEqual(store.exchanges.get('3')!.requestBody, got.requestBody);
    } finally {
      store.close();
    }
    const raw = new Database(file, { readonly: true });
    assert.equal((raw.prepare("SELECT request_body_encoding AS e FROM exchanges WHERE id = 3").get() as { e: string }).e, 'gzip');
    raw.close();
  }
});

test('limitBodies keeps the stored bodies under the limit: the oldest lose their bodies first, keep their hashes, and it is audited', async () => {
  const { store, file } = await fresh();
  const { randomBytes } = await import('node:crypto');
  const bodies = new Map<string, Buffer>();
  const record = (n: number) => {
    for (let i = 0; i < n; i++) {
      const id = store.exchanges.nextId();
      const body = randomBytes(10 * 1024); // does not compress: 10 KiB stored each
      bodies.set(id, body);
      store.exchanges.record(exchange(id, { requestBody: null, responseBody: body, responseBytes: body.length }));
    }
  };
  record(5);
  store.exchanges.limitBodies(100 * 1024);
  assert.equal(store.exchanges.storedBodyBytes(), 5 * 10 * 1024, 'measured at once');
  record(25); // 300 KiB in all: 3x the limit
  store.exchanges.flush();
  await store.exchanges.bodiesPruned();
  const kept = store.exchanges.storedBodyBytes()!;
  assert.ok(kept <= 100 * 1024 * 0.9, `kept ${kept}`);
  const raw = new Database(file, { readonly: true });
  try {
    const actual = (raw.prepare('SELECT coalesce(sum(length(response_body)), 0) AS n FROM exchanges').get() as { n: number }).n;
    assert.equal(actual, kept, 'the tracked size is what the file holds');
    const withBody = (raw.prepare('SELECT id FROM exchanges WHERE response_body IS NOT NULL ORDER BY id').all() as Array<{ id: number }>).map((r) => r.id);
    const all = [...bodies.keys()].map(Number);
    assert.deepEqual(withBody, all.slice(all.length - withBody.length), 'the newest keep their bodies');
  } finally {
    raw.close();
  }
  const ids = [...bodies.keys()];
  const oldest = store.exchanges.get(ids[0]!)!;
  assert.equal(oldest.responseBody, null);
  assert.equal(oldest.responseBodyComplete, false, 'no longer the whole body');
  assert.equal(oldest.responseBodySha256, createHash('sha256').update(bodies.get(ids[0]!)!).digest('hex'), 'the hash of what was sent stays');
  assert.equal(oldest.responseBytes, 10 * 1024);
  assert.equal(oldest.requestBodyComplete, true, 'a body that was never there is not marked as dropped');
  const newest = store.exchanges.get(ids.at(-1)!)!;
  assert.deepEqual(newest.responseBody, bodies.get(ids.at(-1)!));
  const events = store.audit.list().filter((e) => e.action === 'retention.pruned' && e.subject === 'bodies');
  assert.ok(events.length >= 1);
  const dropped = events.reduce((n, e) => n + (e.details as { count: number }).count, 0);
  assert.equal(dropped, ids.length - (kept / (10 * 1024)), 'the events count every row that lost its body');
  assert.equal(store.audit.verify().ok, true);

  // A lower limit later (a restart with another setting) continues from where pruning stopped.
  store.exchanges.limitBodies(30 * 1024);
  await store.exchanges.bodiesPruned();
  assert.ok(store.exchanges.storedBodyBytes()! <= 27 * 1024);
  assert.deepEqual(store.exchanges.get(ids.at(-1)!)!.responseBody, bodies.get(ids.at(-1)!), 'the newest still has its body');
  assert.throws(() => store.exchanges.limitBodies(-1), /whole number of bytes/);
});

test('limitBodies measures before it drops anything: an exchange recorded twice is not counted twice', async () => {
  const { store } = await fresh();
  const body = Buffer.alloc(10 * 1024, 0x61).map((_, i) => (i * 7919) & 0xff); // does not compress
  store.exchanges.limitBodies(25 * 1024);
  const id = store.exchanges.nextId();
  for (let i = 0; i < 3; i++) store.exchanges.record(exchange(id, { responseBody: Buffer.from(body), requestBody: null })); // 30 KiB counted, 10 KiB stored
  store.exchanges.flush();
  await store.exchanges.bodiesPruned();
  assert.ok(store.exchanges.get(id)!.responseBody, 'the only body was dropped on a miscount');
  assert.equal(store.exchanges.storedBodyBytes(), 10 * 1024);
  assert.equal(store.audit.list().filter((e) => e.subject === 'bodies').length, 0);
});

test('close() right after recording keeps the exchanges whose bodies are still being compressed', async () => {
  const { dir } = await fresh();
  const { openStore } = await import('../../main/store');
  // Compressible bodies of this size are gzipped on the thread pool before they are queued.
  const big = Buffer.from(JSON.stringify({ messages: Array.from({ length: 2000 }, (_, i) => ({ role: 'user', content: `message number ${i}` })) }));
  for (const writer of ['inline', 'worker'] as const) {
    const file = `${dir}/close-${writer}.db`;
    const errors: unknown[] = [];
    const store = openStore(file, { writer, onError: (e) => errors.push(e) });
    for (let i = 0; i < 5; i++) store.exchanges.record(exchange(store.exchanges.nextId(), { requestBody: Buffer.from('{"small":true}') }));
    for (let i = 0; i < 5; i++) store.exchanges.record(exchange(store.exchanges.nextId(), { requestBody: big }));
    store.close(); // what `airlock serve` does on SIGINT/SIGTERM, with no flush before it
    const again = openStore(file);
    try {
      assert.equal(again.exchanges.count(), 10, `${writer}: every recorded exchange is on disk after close()`);
      const rows = again.exchanges.list({ limit: 10 });
      const withBig = rows.filter((r) => again.exchanges.get(r.id)!.requestBody!.equals(big));
      assert.equal(withBig.length, 5, `${writer}: the large bodies read back byte for byte`);
      assert.deepEqual(errors, [], writer);
    } finally {
      again.close();
    }
  }
});

test('a sensitive query value of the request is masked in a redirect\'s Location and in bodies, short ones are not searched for', async () => {
  const { store } = await fresh();
  const id = store.exchanges.nextId();
  store.exchanges.record(exchange(id, {
    path: '/login?code=OAUTHCODE-998877&state=s1&token=abc',
    responseHeaders: { location: 'https://app.example/cb?code=OAUTHCODE-998877&state=s1', 'x-note': 'abc stays' },
    responseBody: Buffer.from('{"code":"OAUTHCODE-998877"}'),
  }));
  const x = store.exchanges.get(id)!;
  assert.equal(x.path, '/login?code=[masked]&state=s1&token=[masked]');
  assert.equal(x.responseHeaders!.location, 'https://app.example/cb?code=[masked]&state=s1');
  assert.equal(x.responseHeaders!['x-note'], 'abc stays', 'a 3-character value is masked in the path only');
  assert.equal(x.responseBody!.toString(), '{"code":"[masked]"}');
});
