import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../../main/contract/errors';
import { INTERRUPTED_REASON, type ReviewRecord } from '../../main/store';
import type { Store } from '../../main/store';
import { tempStores } from './helpers';

const fresh = tempStores('airlock-reviews-');

/** Inserts a review with its review.created event, as the review queue does (verify compares the two). */
function insertCreated(store: Store, r: ReviewRecord): void {
  store.reviews.insert(r, { actor: `agent:${r.agent}`, action: 'review.created', subject: r.id,
    details: { exchangeId: r.exchangeId, host: r.host, repo: r.repo, bodySha256: r.bodySha256, bodyBytes: r.bodyBytes, refs: [] } });
}

function review(id: string, over: Partial<ReviewRecord> = {}): ReviewRecord {
  return {
    id,
    exchangeId: `ex-${id}`,
    agent: 'alice',
    kind: 'git-push',
    host: 'github.com',
    repo: 'o/r',
    state: 'pending',
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-01-01T01:00:00.000Z',
    decidedAt: null,
    decidedBy: null,
    reason: null,
    bodySha256: 'a'.repeat(64),
    bodyBytes: 1234,
    bodyPath: '/data/bodies/x',
    summary: 'push 1 ref to o/r',
    detail: { refs: [{ ref: 'refs/heads/main', files: [] }], findings: [{ severity: 'warning', rule: 'r' }] },
    upstreamStatus: null,
    upstreamResult: null,
    ...over,
  };
}

test('insert, get, list by state, duplicate id', async () => {
  const { store } = await fresh();
  const r1 = review('r1');
  store.reviews.insert(r1);
  store.reviews.insert(review('r2', { createdAt: '2026-01-01T00:00:05.000Z', state: 'approved' }));
  assert.deepEqual(store.reviews.get('r1'), r1);
  assert.equal(store.reviews.get('zz'), null);
  assert.deepEqual(store.reviews.list({}).map((r) => r.id), ['r2', 'r1']);
  assert.deepEqual(store.reviews.list({ state: 'pending' }).map((r) => r.id), ['r1']);
  assert.throws(() => store.reviews.insert(r1), (e: unknown) => e instanceof AirlockError && e.code === 'conflict');
});

test('update patches fields and appends review events', async () => {
  const { store, clock } = await fresh();
  store.reviews.insert(review('r1'));
  store.reviews.update('r1', { state: 'approved', decidedAt: '2026-01-01T00:10:00.000Z', decidedBy: 'human', reason: 'looks fine' });
  clock.set('2026-01-01T00:10:02.000Z');
  store.reviews.update('r1', { upstreamStatus: 200 });
  const r = store.reviews.get('r1')!;
  assert.equal(r.state, 'approved');
  assert.equal(r.decidedBy, 'human');
  assert.equal(r.reason, 'looks fine');
  assert.equal(r.upstreamStatus, 200);
  assert.deepEqual(
    store.reviews.events('r1').map(({ state, at, actor, reason }) => ({ state, at, actor, reason })),
    [
      { state: 'pending', at: '2026-01-01T00:00:00.000Z', actor: 'system', reason: null },
      { state: 'approved', at: '2026-01-01T00:10:00.000Z', actor: 'human', reason: 'looks fine' },
      { state: 'approved', at: '2026-01-01T00:10:02.000Z', actor: 'system', reason: null },
    ],
  );
  assert.throws(() => store.reviews.update('nope', { state: 'denied' }), (e: unknown) => e instanceof AirlockError && e.code === 'not-found');
  assert.throws(() => store.reviews.update('r1', { state: 'bogus' as never }), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request');
});

test('markInterrupted turns every pending review into interrupted, with one audit event each', async () => {
  const { store, file } = await fresh();
  insertCreated(store, review('p1'));
  insertCreated(store, review('p2', { createdAt: '2026-01-01T00:00:01.000Z' }));
  insertCreated(store, review('d1'));
  store.reviews.update('d1', { state: 'denied', decidedAt: '2026-01-01T00:00:02.000Z', decidedBy: 'local:ana', reason: 'no' },
    { actor: 'local:ana', action: 'review.denied', subject: 'd1', details: { reason: 'no', exchangeId: 'ex-d1', decidedAt: '2026-01-01T00:00:02.000Z' } });
  store.close();

  // "after a crash": a new process opens the file; openStore itself leaves reviews alone
  const { openStore } = await import('../../main/store');
  const s2 = openStore(file);
  try {
    assert.deepEqual(s2.reviews.list({ state: 'pending' }).map((r) => r.id).sort(), ['p1', 'p2']);
    const at = new Date('2026-01-02T00:00:00.000Z');
    const changed = s2.reviews.markInterrupted(at);
    assert.deepEqual(changed.map((r) => r.id), ['p1', 'p2']);
    for (const r of changed) {
      assert.equal(r.state, 'interrupted');
      assert.equal(r.decidedAt, at.toISOString());
      assert.equal(r.reason, INTERRUPTED_REASON);
    }
    assert.deepEqual(s2.reviews.list({ state: 'pending' }), []);
    assert.equal(s2.reviews.get('d1')!.state, 'denied');
    assert.deepEqual(s2.reviews.events('p1').map((e) => e.state), ['pending', 'interrupted']);
    const audit = s2.audit.list().filter((e) => e.action === 'review.interrupted');
    assert.deepEqual(audit.map((e) => [e.action, e.subject]), [['review.interrupted', 'p1'], ['review.interrupted', 'p2']]);
    assert.equal((audit[0]!.details as { exchangeId: string }).exchangeId, 'ex-p1');
    assert.equal(s2.audit.verify().ok, true);
    assert.deepEqual(s2.reviews.markInterrupted(at), [], 'idempotent');
  } finally {
    s2.close();
  }
});

test('a stored credential an agent committed is masked in the review kept (summary, diff, paths) and a critical finding says so; audit details are masked too', async () => {
  const { store, file } = await fresh();
  const secret = 'ghp_ReviewSecret0123456789abcdef';
  store.setSecrets([secret]);
  const patch = `@@ -0,0 +1 @@\n+GITHUB_TOKEN=${secret}\n`;
  insertCreated(store, review('m1', {
    summary: `adds .env with ${secret}`,
    detail: { refs: [{ ref: 'refs/heads/main', files: [{ path: `.env-${secret}`, patch }] }], findings: [{ severity: 'warning', rule: 'r' }] },
  }));
  const got = store.reviews.get('m1')!;
  const text = JSON.stringify(got);
  assert.ok(!text.includes(secret), text);
  assert.match(got.summary, /^adds \.env with \[masked\]$/);
  const d = got.detail as { refs: Array<{ files: Array<{ path: string; patch: string }> }>; findings: Array<{ rule: string; severity: string }> };
  assert.equal(d.refs[0]!.files[0]!.patch, '@@ -0,0 +1 @@\n+GITHUB_TOKEN=[masked]\n');
  assert.equal(d.refs[0]!.files[0]!.path, '.env-[masked]');
  assert.deepEqual(d.findings.map((f) => [f.severity, f.rule]), [['critical', 'stored-credential'], ['warning', 'r']]);
  // A review without one is kept as given, without the finding.
  const clean = review('m2');
  insertCreated(store, clean);
  assert.deepEqual(store.reviews.get('m2'), clean);
  // The append-only log cannot be cleaned later: its details are masked on the way in.
  const e = store.audit.append({ actor: 'system', action: 'review.forwarded', subject: 'm1', details: { detail: `upstream said: token ${secret} lacks scope`, nested: [{ [secret]: 1 }] } });
  assert.ok(!JSON.stringify(e).includes(secret), JSON.stringify(e));
  assert.equal(store.audit.verify().ok, true);
  store.exchanges.flush();
  const { readFileSync, existsSync } = await import('node:fs');
  const raw = Buffer.concat([readFileSync(file), existsSync(`${file}-wal`) ? readFileSync(`${file}-wal`) : Buffer.alloc(0)]);
  assert.equal(raw.indexOf(secret), -1, 'the secret is in the database file');
});
