// The reviews table against the audit chain. Reviews are made through the real ReviewQueue on a real store
// (approved and forwarded, denied, expired, interrupted, pending); then each column the chain vouches for is
// changed directly in a copy of the SQLite file, as an auditor with the file in hand can, and `verify` of the
// database (and `airlock audit verify`, exit 1) must name the review and the field. An untouched record with
// many reviews verifies; so does one whose reviews were recorded before review.created held `shownSha256`
// (and decision events `decidedAt`), with a note that says what could not be compared.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ReviewQueue, type NewReview } from '../../main/review/queue';
import { openStore, type AuditEvent, type ReviewRecord, type Store } from '../../main/store';
import { sqlite } from '../../main/store/sqlite';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { tamperedCopy as tamperedCopyOf } from '../helpers/tamper';
import { airlock } from '../record/cli';

const Database = sqlite();

let tmp: string;
let dataDir: string;
/** seq of each review event of the record built in `before`, by `${subject} ${action}`. */
const seqOf = new Map<string, number>();

const EVIL_LINE = '+eval(atob(process.env.PAYLOAD))';

function input(n: number, patch = `@@ -0,0 +1 @@\n+console.log(${n})\n`): NewReview {
  return {
    exchangeId: String(100 + n),
    agent: 'bot',
    kind: 'git-push',
    host: 'git.example.com',
    repo: '/proj.git',
    bodySha256: String(n % 10).repeat(64),
    bodyBytes: 1000 + n,
    bodyPath: null,
    summary: `update refs/heads/b${n} (1 commit, 1 file, +1 −0)`,
    refs: [{
      ref: `refs/heads/b${n}`, oldOid: '1'.repeat(40), newOid: '2'.repeat(40), change: 'fast-forward', commits: [], base: 'origin/main',
      files: [{ path: 'src/app.js', oldPath: null, status: 'modified', binary: false, oldSize: 10, newSize: 20, oldMode: null, newMode: null,
        additions: 1, deletions: 0, patch, omitted: null }],
      omitted: null,
    }],
    findings: [{ severity: 'warning', rule: 'eval', message: 'eval of an environment variable', path: 'src/app.js', line: 1 }],
  };
}

/**
 * Reviews 1-6 as the gateway makes them: 1 approved by local:alice and forwarded (200, ok), 2 denied by
 * local:bob (its diff holds EVIL_LINE), 3 approved without a reason and forwarded (200, a ref refused),
 * 4 pending, 5 interrupted (the agent went away), 6 expired.
 */
async function buildRecord(store: Store): Promise<void> {
  const q = new ReviewQueue(store, 60_000, () => new Date(), (e) => { throw e; });
  const one = q.create(input(1));
  const two = q.create(input(2, `@@ -1,2 +1,2 @@\n-const x = 1;\n${EVIL_LINE}\n`));
  const three = q.create(input(3));
  q.create(input(4));
  const five = q.create(input(5));
  q.approve('1', 'local:alice', 'looks fine', 'cli');
  q.forwarded('1', 200, 'upstream answered 200', 'ok');
  q.deny('2', 'local:bob', 'runs an eval of an environment variable', 'web console');
  q.approve('3', 'local:alice');
  q.forwarded('3', 200, 'upstream answered 200', 'refs/heads/b3: rejected (non-fast-forward)');
  q.interrupt('5', 'the agent closed the connection');
  const expiring = new ReviewQueue(store, 20, () => new Date(), (e) => { throw e; });
  const six = expiring.create(input(6));
  const keepAlive = setTimeout(() => {}, 10_000); // the queue's expiry timer is unref'd
  try {
    assert.equal((await six.decision).state, 'expired');
  } finally {
    clearTimeout(keepAlive);
  }
  for (const c of [one, two, three, five]) await c.decision;
}

before(async () => {
  tmp = await makeTempDir('airlock-review-chain-');
  dataDir = join(tmp, 'data');
  const store = openStore(join(dataDir, 'airlock.db'));
  try {
    await buildRecord(store);
    for (const e of store.audit.list()) if (e.action.startsWith('review.')) seqOf.set(`${e.subject} ${e.action}`, e.seq);
    assert.equal(store.reviews.get('2')!.state, 'denied');
    assert.equal(store.reviews.get('4')!.state, 'pending');
    assert.equal(store.reviews.get('6')!.state, 'expired');
  } finally {
    store.close();
  }
});

after(async () => {
  await removeDir(tmp);
});

/** A copy of the record in a fresh dir, with its triggers dropped and `sql` run against it. */
function tamperedCopy(name: string, sql: string): string {
  return tamperedCopyOf(dataDir, join(tmp, name), sql);
}

function verifyDir(dir: string): ReturnType<Store['audit']['verify']> {
  const store = openStore(join(dir, 'airlock.db'));
  try {
    return store.audit.verify();
  } finally {
    store.close();
  }
}

const seq = (id: string, action: string): number => {
  const s = seqOf.get(`${id} review.${action}`);
  assert.ok(s !== undefined, `no review.${action} for review ${id}`);
  return s;
};

test('an untouched record verifies, and says its reviews match the chain', () => {
  const r = verifyDir(dataDir);
  assert.equal(r.ok, true, r.message);
  // Every review compared in full: the message is the chain's, as before; the result counts them.
  assert.match(r.message, /^ok \d+ events, head [0-9a-f]{64}$/);
  assert.deepEqual(r.reviews, { checked: 6, withoutShown: 0, withoutDecidedAt: 0, problems: [] });
});

test('each column the chain vouches for, changed in the table, fails verify naming the review and the field', async (t) => {
  const cases: Array<{ name: string; sql: string; expect: () => RegExp | string }> = [
    { name: 'state', sql: "UPDATE reviews SET state = 'approved' WHERE id = '2'",
      expect: () => `review 2: state approved in the table, denied in the chain (seq ${seq('2', 'denied')})` },
    { name: 'decided_by', sql: "UPDATE reviews SET decided_by = 'local:alice' WHERE id = '2'",
      expect: () => `review 2: decided_by local:alice in the table, local:bob in the chain (seq ${seq('2', 'denied')})` },
    { name: 'reason', sql: "UPDATE reviews SET reason = 'reviewed, fine' WHERE id = '2'",
      expect: () => `review 2: reason "reviewed, fine" in the table, "runs an eval of an environment variable" in the chain (seq ${seq('2', 'denied')})` },
    { name: 'decided_at', sql: "UPDATE reviews SET decided_at = '2020-01-01T00:00:00.000Z' WHERE id = '1'",
      expect: () => new RegExp(`review 1: decided_at 2020-01-01T00:00:00\\.000Z in the table, \\S+ in the chain \\(seq ${seq('1', 'approved')}\\)`) },
    { name: 'expired reason', sql: "UPDATE reviews SET reason = 'denied by a reviewer' WHERE id = '6'",
      expect: () => new RegExp(`review 6: reason "denied by a reviewer" in the table, "no decision within [^"]+" in the chain \\(seq ${seq('6', 'expired')}\\)`) },
    { name: 'interrupted state', sql: "UPDATE reviews SET state = 'denied' WHERE id = '5'",
      expect: () => `review 5: state denied in the table, interrupted in the chain (seq ${seq('5', 'interrupted')})` },
    { name: 'a pending review given a decision', sql: "UPDATE reviews SET state = 'approved', decided_by = 'local:alice' WHERE id = '4'",
      expect: () => `review 4: state approved in the table, pending in the chain (no decision event after review.created, seq ${seq('4', 'created')})` },
    { name: 'detail_json (a diff line replaced)', sql: `UPDATE reviews SET detail_json = replace(detail_json, '${EVIL_LINE}', '+const y = 2;') WHERE id = '2'`,
      expect: () => new RegExp(`review 2: summary or detail_json \\(the diff and findings shown to the reviewer\\) changed: their SHA-256 is [0-9a-f]{64} in the table, [0-9a-f]{64} in the chain \\(seq ${seq('2', 'created')}\\)`) },
    { name: 'detail_json (a finding removed)', sql: "UPDATE reviews SET detail_json = json_set(detail_json, '$.findings', json('[]')) WHERE id = '1'",
      expect: () => /review 1: summary or detail_json \(the diff and findings shown to the reviewer\) changed/ },
    { name: 'summary', sql: "UPDATE reviews SET summary = 'update README' WHERE id = '2'",
      expect: () => /review 2: summary or detail_json \(the diff and findings shown to the reviewer\) changed/ },
    { name: 'upstream_status', sql: "UPDATE reviews SET upstream_status = 500 WHERE id = '1'",
      expect: () => `review 1: upstream_status 500 in the table, 200 in the chain (seq ${seq('1', 'forwarded')})` },
    { name: 'upstream_result', sql: "UPDATE reviews SET upstream_result = 'ok' WHERE id = '3'",
      expect: () => `review 3: upstream_result "ok" in the table, "refs/heads/b3: rejected (non-fast-forward)" in the chain (seq ${seq('3', 'forwarded')})` },
    { name: 'upstream_result of a push never forwarded', sql: "UPDATE reviews SET upstream_result = 'ok', upstream_status = 200 WHERE id = '2'",
      expect: () => new RegExp(`review 2: upstream_status 200 in the table, none in the chain \\(no review.forwarded after review.created, seq ${seq('2', 'created')}\\); ` +
        `review 2: upstream_result "ok" in the table, none in the chain`) },
    { name: 'host', sql: "UPDATE reviews SET host = 'github.com' WHERE id = '1'",
      expect: () => `review 1: host github.com in the table, git.example.com in the chain (seq ${seq('1', 'created')})` },
    { name: 'repo', sql: "UPDATE reviews SET repo = '/other.git' WHERE id = '1'",
      expect: () => `review 1: repo /other.git in the table, /proj.git in the chain (seq ${seq('1', 'created')})` },
    { name: 'body_sha256', sql: `UPDATE reviews SET body_sha256 = '${'f'.repeat(64)}' WHERE id = '1'`,
      expect: () => `review 1: body_sha256 ${'f'.repeat(64)} in the table, ${'1'.repeat(64)} in the chain (seq ${seq('1', 'created')})` },
    { name: 'body_bytes', sql: "UPDATE reviews SET body_bytes = 7 WHERE id = '1'",
      expect: () => `review 1: body_bytes 7 in the table, 1001 in the chain (seq ${seq('1', 'created')})` },
    { name: 'exchange_id', sql: "UPDATE reviews SET exchange_id = '999' WHERE id = '1'",
      expect: () => `review 1: exchange_id 999 in the table, 101 in the chain (seq ${seq('1', 'created')})` },
    { name: 'agent', sql: "UPDATE reviews SET agent = 'trusted-bot' WHERE id = '1'",
      expect: () => `review 1: agent trusted-bot in the table, bot in the chain (seq ${seq('1', 'created')})` },
    { name: 'a row deleted', sql: "DELETE FROM reviews WHERE id = '2'",
      expect: () => `review 2: created in the chain (seq ${seq('2', 'created')}) but not in the table (its row was deleted)` },
    { name: 'a row added', sql: "INSERT INTO reviews SELECT '7', exchange_id, agent, kind, host, repo, state, created_at, expires_at, decided_at, decided_by, reason, body_sha256, body_bytes, body_path, summary, detail_json, upstream_status, upstream_result FROM reviews WHERE id = '1'",
      expect: () => 'review 7: in the table, but the chain has no review.created for it (a row added outside Airlock)' },
  ];
  for (const [i, c] of cases.entries()) {
    await t.test(c.name, () => {
      const r = verifyDir(tamperedCopy(`t${i}`, c.sql));
      assert.equal(r.ok, false, `verify passed after changing ${c.name}: ${r.message}`);
      assert.equal(r.brokenAt, null, 'the chain itself holds');
      assert.match(r.message, /^the reviews table does not match the audit chain: review /);
      assert.match(r.message, /\(The chain itself holds: ok \d+ events, head [0-9a-f]{64}\.\)$/);
      const e = c.expect();
      if (typeof e === 'string') assert.ok(r.message.includes(e), `expected ${JSON.stringify(e)} in ${JSON.stringify(r.message)}`);
      else assert.match(r.message, e);
    });
  }
});

test('the auditor\'s forgery (denied made approved by alice, reason, a diff line, an upstream result): airlock audit verify exits 1 naming each', async () => {
  const dir = tamperedCopy('forgery', `UPDATE reviews SET state = 'approved', decided_by = 'local:alice', reason = 'reviewed, fine',
    detail_json = replace(detail_json, '${EVIL_LINE}', '+const y = 2;'), upstream_result = 'ok' WHERE id = '2'`);
  const ok = await airlock(['audit', 'verify', '--data-dir', dataDir]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^ok \d+ events, head [0-9a-f]{64}\n$/);
  const r = await airlock(['audit', 'verify', '--data-dir', dir]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const denied = seq('2', 'denied');
  for (const part of [
    'the reviews table does not match the audit chain: ',
    `review 2: summary or detail_json (the diff and findings shown to the reviewer) changed`,
    `review 2: state approved in the table, denied in the chain (seq ${denied})`,
    `review 2: decided_by local:alice in the table, local:bob in the chain (seq ${denied})`,
    `review 2: reason "reviewed, fine" in the table, "runs an eval of an environment variable" in the chain (seq ${denied})`,
    `review 2: upstream_result "ok" in the table, none in the chain (no review.forwarded after review.created, seq ${seq('2', 'created')})`,
  ]) assert.ok(r.stdout.includes(part), `expected ${JSON.stringify(part)} in ${JSON.stringify(r.stdout)}`);
});

test('many reviews, untouched, verify; one changed among them is named', async () => {
  const dir = await makeTempDir('airlock-review-chain-many-');
  try {
    const store = openStore(join(dir, 'airlock.db'));
    try {
      const q = new ReviewQueue(store, 60_000, () => new Date(), (e) => { throw e; });
      for (let n = 1; n <= 300; n++) {
        const { review } = q.create(input(n));
        if (n % 4 === 0) q.deny(review.id, 'local:bob', `no ${n}`);
        else if (n % 4 === 1) {
          q.approve(review.id, 'local:alice', n % 8 === 1 ? null : `ok ${n}`);
          q.forwarded(review.id, 200, 'upstream answered 200', n % 3 === 0 ? 'ok' : null);
        } else if (n % 4 === 2) q.interrupt(review.id, 'the agent closed the connection');
      }
      const r = store.audit.verify();
      assert.equal(r.ok, true, r.message);
      assert.equal(r.reviews?.checked, 300);
      q.shutdown();
      const after = store.audit.verify();
      assert.equal(after.ok, true, after.message);
      assert.equal(after.reviews?.checked, 300);
    } finally {
      store.close();
    }
    const db = new Database(join(dir, 'airlock.db'));
    try {
      db.exec("UPDATE reviews SET reason = 'no 1' WHERE id = '293'");
    } finally {
      db.close();
    }
    const store2 = openStore(join(dir, 'airlock.db'));
    try {
      const r = store2.audit.verify();
      assert.equal(r.ok, false);
      assert.match(r.message, /^the reviews table does not match the audit chain: review 293: reason "no 1" in the table, "ok 293" in the chain \(seq \d+\)\. \(The chain/);
    } finally {
      store2.close();
    }
  } finally {
    await removeDir(dir);
  }
});

/**
 * Reviews written as the code before this check wrote them: review.created without `shownSha256`,
 * decisions without `decidedAt`, an interruption at start without `reason`, a forward without `result`.
 */
function legacyReview(store: Store, id: string, over: Partial<ReviewRecord> = {}): ReviewRecord {
  const n = input(Number(id));
  const rec: ReviewRecord = {
    id, exchangeId: n.exchangeId, agent: n.agent, kind: n.kind, host: n.host, repo: n.repo, state: 'pending',
    createdAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString(), decidedAt: null, decidedBy: null, reason: null,
    bodySha256: n.bodySha256, bodyBytes: n.bodyBytes, bodyPath: null, summary: n.summary, detail: { refs: n.refs, findings: n.findings },
    upstreamStatus: null, ...over,
  };
  store.reviews.insert(rec);
  store.audit.append({ actor: `agent:${n.agent}`, action: 'review.created', subject: id,
    details: { exchangeId: n.exchangeId, host: n.host, repo: n.repo, bodySha256: n.bodySha256, bodyBytes: n.bodyBytes,
      refs: n.refs.map((r) => ({ ref: r.ref, change: r.change, oldOid: r.oldOid, newOid: r.newOid })) } });
  return rec;
}

test('a record made before this check (no shownSha256, no decidedAt) verifies, with a note; what it did record is still compared', async () => {
  const dir = await makeTempDir('airlock-review-chain-legacy-');
  try {
    const file = join(dir, 'airlock.db');
    const store = openStore(file);
    let created: AuditEvent[] = [];
    try {
      legacyReview(store, '1');
      store.reviews.update('1', { state: 'denied', decidedAt: new Date().toISOString(), decidedBy: 'local:bob', reason: 'no' },
        { actor: 'local:bob', action: 'review.denied', subject: '1', details: { reason: 'no', exchangeId: '101', via: 'cli' } });
      legacyReview(store, '2');
      store.reviews.update('2', { state: 'approved', decidedAt: new Date().toISOString(), decidedBy: 'local:alice', reason: null },
        { actor: 'local:alice', action: 'review.approved', subject: '2', details: { reason: null, exchangeId: '102' } });
      store.reviews.update('2', { upstreamStatus: 200 }, { actor: 'airlock', action: 'review.forwarded', subject: '2', details: { upstreamStatus: 200, detail: 'ok' } });
      legacyReview(store, '3');
      // An interruption at start, as markInterrupted wrote it: no reason in the event (it was always INTERRUPTED_REASON).
      const { INTERRUPTED_REASON } = await import('../../main/store');
      store.reviews.update('3', { state: 'interrupted', decidedAt: '2026-01-02T00:00:00.000Z', decidedBy: 'system', reason: INTERRUPTED_REASON },
        { actor: 'system', action: 'review.interrupted', subject: '3', details: { exchangeId: '103', agent: 'bot', host: 'git.example.com', repo: '/proj.git', bodySha256: '3'.repeat(64), createdAt: '2026-01-01T00:00:00.000Z' } });
      // And one made today, through the queue.
      const q = new ReviewQueue(store, 60_000, () => new Date(), (e) => { throw e; });
      const four = q.create(input(4));
      q.approve(four.review.id, 'local:alice', 'fine');
      created = store.audit.list().filter((e) => e.action === 'review.created');
      const r = store.audit.verify();
      assert.equal(r.ok, true, r.message);
      assert.match(r.message, /; 4 reviews match the chain \(3 reviews made before this check: summary and diff not compared; 3 decisions recorded before this check: decided_at not compared\)$/);
    } finally {
      store.close();
    }
    assert.deepEqual(created.map((e) => 'shownSha256' in (e.details as object)), [false, false, false, true]);
    // What the old events hold is still compared: a denial made an approval, an upstream status.
    const db = new Database(file);
    try {
      db.exec("UPDATE reviews SET state = 'approved', decided_by = 'local:alice' WHERE id = '1'; UPDATE reviews SET upstream_status = 201 WHERE id = '2'; UPDATE reviews SET reason = 'x' WHERE id = '3'");
    } finally {
      db.close();
    }
    const s2 = openStore(file);
    try {
      const r = s2.audit.verify();
      assert.equal(r.ok, false);
      for (const part of ['review 1: state approved in the table, denied in the chain', 'review 1: decided_by local:alice in the table, local:bob in the chain',
        'review 2: upstream_status 201 in the table, 200 in the chain', 'review 3: reason "x" in the table, "Airlock stopped before this review was decided']) {
        assert.ok(r.message.includes(part), `expected ${JSON.stringify(part)} in ${JSON.stringify(r.message)}`);
      }
    } finally {
      s2.close();
    }
  } finally {
    await removeDir(dir);
  }
});

test('a decision whose reason held a stored credential: masked in the chain, kept in the row, still matches', async () => {
  const dir = await makeTempDir('airlock-review-chain-mask-');
  const store = openStore(join(dir, 'airlock.db'));
  try {
    const secret = 'ghp_ChainSecret0123456789abcdef';
    store.setSecrets([secret]);
    const q = new ReviewQueue(store, 60_000, () => new Date(), (e) => { throw e; });
    const { review } = q.create(input(1));
    q.deny(review.id, 'local:bob', `commits the token ${secret}`);
    const r = store.audit.verify();
    assert.equal(r.ok, true, r.message);
    assert.equal(r.reviews?.checked, 1);
    assert.deepEqual(r.reviews?.problems, []);
  } finally {
    store.close();
    await removeDir(dir);
  }
});
