// ReviewQueue over a real SQLite store (a temp file): ids, one decision per review, expiry,
// interrupt, change events, shutdown, and the audit events each change writes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ReviewQueue, type Decision, type NewReview } from '../../main/review/queue';
import { openStore, type ReviewRecord, type Store } from '../../main/store';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { airlockErrorCode } from '../helpers/errors';

const dirs: string[] = [];
const stores: Store[] = [];
after(async () => {
  for (const s of stores) { try { s.close(); } catch { /* closed */ } }
  for (const d of dirs) await removeDir(d);
});

async function freshStore(): Promise<{ store: Store; file: string }> {
  const dir = await makeTempDir('airlock-queue-test-');
  dirs.push(dir);
  const file = join(dir, 'airlock.db');
  const store = openStore(file);
  stores.push(store);
  return { store, file };
}

function input(n = 1): NewReview {
  return {
    exchangeId: `ex-${n}`,
    agent: 'bot',
    kind: 'git-push',
    host: 'git.example.com',
    repo: '/proj.git',
    bodySha256: 'a'.repeat(64),
    bodyBytes: 123,
    bodyPath: null,
    summary: 'update refs/heads/main (1 commit, 1 file, +1 −0)',
    refs: [{ ref: 'refs/heads/main', oldOid: '1'.repeat(40), newOid: '2'.repeat(40), change: 'fast-forward', commits: [], base: 'x', files: [], omitted: null }],
    findings: [],
  };
}


/** Resolves with the decision or rejects after `ms` (every wait is bounded). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_r, rej) => { t = setTimeout(() => rej(new Error(`not settled within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

test('ids increase and continue after a restart on the same store', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 60_000);
  const ids = [q.create(input(1)), q.create(input(2)), q.create(input(3))].map((c) => c.review.id);
  assert.deepEqual(ids, ['1', '2', '3']);
  q.shutdown();
  const q2 = new ReviewQueue(store, 60_000);
  assert.equal(q2.create(input(4)).review.id, '4');
  q2.shutdown();
});

test('a created review is pending, stored, with expiresAt = now + timeout, and audited', async () => {
  const { store } = await freshStore();
  const fixed = new Date('2026-01-02T03:04:05.000Z');
  const q = new ReviewQueue(store, 90_000, () => fixed);
  const { review } = q.create(input());
  assert.equal(review.state, 'pending');
  assert.equal(review.createdAt, fixed.toISOString());
  assert.equal(review.expiresAt, new Date(fixed.getTime() + 90_000).toISOString());
  assert.equal(store.reviews.get(review.id)?.bodySha256, 'a'.repeat(64));
  const created = store.audit.list().filter((e) => e.action === 'review.created' && e.subject === review.id);
  assert.equal(created.length, 1);
  assert.equal(created[0]!.actor, 'agent:bot');
  q.shutdown();
});

test('exactly one decision: approve settles the promise, a second decision is a conflict', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 60_000);
  const { review, decision } = q.create(input());
  const rec = q.approve(review.id, 'carol', '  looks fine ');
  assert.equal(rec.state, 'approved');
  assert.equal(rec.decidedBy, 'carol');
  assert.equal(rec.reason, 'looks fine');
  const d = await within(decision, 1000);
  assert.deepEqual(d, { state: 'approved', by: 'carol', reason: 'looks fine' });
  assert.equal(airlockErrorCode(() => q.approve(review.id, 'dave')), 'conflict');
  assert.equal(airlockErrorCode(() => q.deny(review.id, 'dave', 'too late')), 'conflict');
  try {
    q.deny(review.id, 'dave', 'too late');
  } catch (e) {
    assert.match((e as Error).message, /already approved by carol/);
  }
  assert.equal(store.reviews.get(review.id)?.state, 'approved');
  assert.equal(store.reviews.get(review.id)?.decidedBy, 'carol');
});

test('deny needs a reason; unknown ids are not-found', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 60_000);
  const { review, decision } = q.create(input());
  assert.equal(airlockErrorCode(() => q.deny(review.id, 'carol', '')), 'bad-request');
  assert.equal(airlockErrorCode(() => q.deny(review.id, 'carol', '   ')), 'bad-request');
  assert.equal(store.reviews.get(review.id)?.state, 'pending');
  assert.equal(airlockErrorCode(() => q.approve('999', 'carol')), 'not-found');
  q.deny(review.id, 'carol', ' not this way ');
  const d = await within(decision, 1000);
  assert.deepEqual(d, { state: 'denied', by: 'carol', reason: 'not this way' });
  assert.equal(store.reviews.get(review.id)?.reason, 'not this way');
});

test('a review not decided within the timeout expires; a late decision is a conflict', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 150);
  const t0 = Date.now();
  const { review, decision } = q.create(input());
  const d: Decision = await within(decision, 5000);
  assert.ok(Date.now() - t0 >= 140, 'expired too early');
  assert.equal(d.state, 'expired');
  assert.equal(d.by, 'airlock');
  assert.match(d.reason, /no decision within/);
  const rec = store.reviews.get(review.id)!;
  assert.equal(rec.state, 'expired');
  assert.equal(rec.decidedBy, 'airlock');
  assert.equal(airlockErrorCode(() => q.approve(review.id, 'carol')), 'conflict');
  assert.ok(store.audit.list().some((e) => e.action === 'review.expired' && e.subject === review.id));
});

test('interrupt settles a pending review once; interrupting a decided one changes nothing', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 60_000);
  const a = q.create(input(1));
  const b = q.create(input(2));
  q.interrupt(a.review.id, 'the agent disconnected');
  assert.deepEqual(await within(a.decision, 1000), { state: 'interrupted', by: 'airlock', reason: 'the agent disconnected' });
  assert.equal(store.reviews.get(a.review.id)?.state, 'interrupted');
  q.approve(b.review.id, 'carol');
  q.interrupt(b.review.id, 'too late');
  assert.equal(store.reviews.get(b.review.id)?.state, 'approved');
  q.interrupt('12345', 'unknown id: no throw');
  assert.equal(airlockErrorCode(() => q.approve(a.review.id, 'carol')), 'conflict');
});

test('every change fires an event with the stored record; unsubscribe stops them', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 60_000);
  const seen: ReviewRecord[] = [];
  const off = q.onChange((r) => seen.push(r));
  const { review } = q.create(input());
  q.approve(review.id, 'carol');
  q.forwarded(review.id, 200, 'ok');
  assert.deepEqual(seen.map((r) => [r.id, r.state, r.upstreamStatus]), [
    [review.id, 'pending', null],
    [review.id, 'approved', null],
    [review.id, 'approved', 200],
  ]);
  off();
  q.create(input(2));
  assert.equal(seen.length, 3);
  const actions = store.audit.list().filter((e) => e.subject === review.id).map((e) => e.action);
  assert.deepEqual(actions, ['review.created', 'review.approved', 'review.forwarded']);
  assert.equal(store.audit.verify().ok, true);
  q.shutdown();
});

test('shutdown interrupts every pending review and leaves decided ones alone', async () => {
  const { store } = await freshStore();
  const q = new ReviewQueue(store, 60_000);
  const a = q.create(input(1));
  const b = q.create(input(2));
  const c = q.create(input(3));
  q.deny(c.review.id, 'carol', 'no');
  q.shutdown();
  for (const x of [a, b]) {
    assert.deepEqual(await within(x.decision, 1000), { state: 'interrupted', by: 'airlock', reason: 'Airlock shut down' });
    assert.equal(store.reviews.get(x.review.id)?.state, 'interrupted');
  }
  assert.equal(store.reviews.get(c.review.id)?.state, 'denied');
  assert.equal(q.list('pending').length, 0);
  assert.equal(q.list().length, 3);
});

test('a database that refuses writes: a reviewer\'s decision is not taken (the push stays held); an expiry still rejects the push, and the next start marks it interrupted', async () => {
  const dir = await makeTempDir('airlock-queue-readonly-');
  dirs.push(dir);
  const file = join(dir, 'airlock.db');
  let db!: import('better-sqlite3').Database;
  const store = openStore(file, { testConnection: (c) => (db = c) });
  stores.push(store);
  const reported: string[] = [];
  const q = new ReviewQueue(store, 60_000, () => new Date(), (e) => reported.push(e.message));
  const a = q.create(input(1));
  const quick = new ReviewQueue(store, 400, () => new Date(), (e) => reported.push(e.message)); // B expires soon
  const b = quick.create(input(2));
  let aSettled: Decision | null = null;
  void a.decision.then((d) => (aSettled = d));

  db.pragma('query_only = ON'); // SQLite now answers every write with SQLITE_READONLY, as for a read-only file
  assert.equal(airlockErrorCode(() => q.approve(a.review.id, 'alice')), 'unavailable');
  assert.throws(() => q.approve(a.review.id, 'alice'), /could not record this decision, so it did not take it .*review 1 stays pending/);
  assert.equal(q.get(a.review.id)!.state, 'pending');
  // B expires meanwhile: the push is rejected (never forwarded), the failure to record it is reported, nothing throws.
  const bDecision = await within(b.decision, 5_000);
  assert.equal(bDecision.state, 'expired');
  assert.ok(reported.some((m) => /review 2: the push was expired .* could not be recorded/.test(m)), reported.join('\n'));
  assert.equal(aSettled, null, 'A was decided although its approval was not recorded');

  db.pragma('query_only = OFF');
  q.approve(a.review.id, 'alice'); // A is still pending: the reviewer decides again
  assert.equal((await within(a.decision, 1_000)).state, 'approved');
  const events = store.audit.list().map((e) => `${e.action} ${e.subject}`);
  assert.ok(events.includes('review.approved 1'));
  assert.ok(!events.includes('review.expired 2'));
  assert.equal(store.audit.verify().ok, true);
  // B is pending in the record: the next start marks it interrupted.
  assert.equal(store.reviews.get(b.review.id)!.state, 'pending');
  assert.deepEqual(store.reviews.markInterrupted(new Date()).map((r) => r.id), [b.review.id]);
  q.shutdown();
  quick.shutdown();
});
