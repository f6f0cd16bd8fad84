// The record after a gateway stopped uncleanly (recovery.ts), on a real SQLite file: open sessions
// ended at their last exchange, a held push's missing exchange restored from its review, an approved
// push whose forwarding was never recorded marked and logged, one audit event; a second run finds nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FORWARD_UNKNOWN_REASON, FORWARD_UNKNOWN_RESULT, RESTORED_EXCHANGE_ERROR } from '../../main/store';
import type { ReviewRecord } from '../../main/store/types';
import { exchange, tempStores } from './helpers';

const fresh = tempStores('airlock-recovery-');

function review(id: string, exchangeId: string, over: Partial<ReviewRecord> = {}): ReviewRecord {
  return {
    id, exchangeId, agent: 'alice', kind: 'git-push', host: '127.0.0.1:8443', repo: 'o/r.git', state: 'pending',
    createdAt: '2026-01-01T00:00:02.000Z', expiresAt: '2026-01-01T00:15:02.000Z', decidedAt: null, decidedBy: null, reason: null,
    bodySha256: 'ab'.repeat(32), bodyBytes: 1234, bodyPath: null, summary: 'update refs/heads/main', detail: { refs: [], findings: [] },
    upstreamStatus: null, ...over,
  };
}

test('after an unclean stop: sessions ended, a held push\'s exchange restored, an unrecorded forward marked; one audit event; idempotent', async () => {
  const { store } = await fresh();
  store.sessions.start({ id: 's1', agent: 'alice', clientAddress: '127.0.0.1', startedAt: '2026-01-01T00:00:00.000Z' });
  store.sessions.start({ id: 's2', agent: 'alice', clientAddress: '127.0.0.1', startedAt: '2026-01-01T00:00:03.000Z' });
  store.exchanges.record(exchange('1', { sessionId: 's1', endedAt: '2026-01-01T00:00:01.500Z', kind: 'other', path: '/a' }));
  store.exchanges.record(exchange('2', { sessionId: 's1', endedAt: '2026-01-01T00:00:01.700Z', kind: 'other', path: '/b' }));
  // A push approved and being forwarded (its exchange row not written yet), and a held push never written.
  // Each with its audit events, as the review queue writes them (verify compares the rows with them).
  const created = (r: ReviewRecord) => ({ actor: `agent:${r.agent}`, action: 'review.created', subject: r.id,
    details: { exchangeId: r.exchangeId, host: r.host, repo: r.repo, bodySha256: r.bodySha256, bodyBytes: r.bodyBytes, refs: [] } });
  const seven = review('7', '5');
  store.reviews.insert(seven, created(seven));
  store.reviews.update('7', { state: 'approved', decidedAt: '2026-01-01T00:00:04.000Z', decidedBy: 'human:ana', reason: null },
    { actor: 'human:ana', action: 'review.approved', subject: '7', details: { reason: null, exchangeId: '5', decidedAt: '2026-01-01T00:00:04.000Z' } });
  const eight = review('8', '6', { host: '[::1]:80', createdAt: '2026-01-01T00:00:05.000Z' });
  store.reviews.insert(eight, created(eight));
  store.reviews.markInterrupted(new Date('2026-01-01T00:01:00.000Z'));

  const r = store.recover({ previous: { pid: 4242, startedAt: '2026-01-01T00:00:00.000Z' }, spool: { files: 2, bytes: 99 } });
  assert.equal(r.uncleanStop, true);
  assert.equal(r.sessionsEnded, 2);
  assert.deepEqual(r.exchangesRestored, ['5', '6']);
  assert.deepEqual(r.forwardUnknown, ['7']);
  assert.deepEqual(r.lastExchange, { id: 6, at: '2026-01-01T00:00:05.000Z' });

  assert.equal(store.sessions.get('s1')?.endedAt, '2026-01-01T00:00:01.700Z', 'ended at its last exchange');
  assert.equal(store.sessions.get('s2')?.endedAt, '2026-01-01T00:00:03.000Z', 'no exchange: ended when it started');
  const five = store.exchanges.get('5')!;
  assert.equal(five.reviewId, '7');
  assert.equal(five.host, '127.0.0.1');
  assert.equal(five.port, 8443);
  assert.equal(five.path, '/o/r.git/git-receive-pack');
  assert.equal(five.requestBytes, 1234);
  assert.equal(five.requestBodySha256, 'ab'.repeat(32));
  assert.equal(five.error, RESTORED_EXCHANGE_ERROR);
  const six = store.exchanges.get('6')!;
  assert.equal(six.host, '::1');
  assert.equal(six.scheme, 'http');
  assert.equal(store.reviews.get('7')?.upstreamStatus, null);
  assert.equal(store.reviews.get('7')?.upstreamResult, FORWARD_UNKNOWN_RESULT);
  assert.equal(store.reviews.get('8')?.state, 'interrupted');

  const events = store.audit.list();
  const unknown = events.filter((e) => e.action === 'review.forward-unknown');
  assert.deepEqual(unknown.map((e) => e.subject), ['7']);
  assert.equal((unknown[0]!.details as { reason: string }).reason, FORWARD_UNKNOWN_REASON);
  const recovered = events.filter((e) => e.action === 'record.repaired');
  assert.equal(recovered.length, 1);
  assert.equal(recovered[0]!.subject, 'pid 4242');
  assert.deepEqual((recovered[0]!.details as Record<string, unknown>).spoolFilesRemoved, 2);
  assert.equal(store.audit.verify().ok, true);

  // A clean stop and start finds nothing to put right and writes nothing.
  const again = store.recover({ previous: null, spool: { files: 0, bytes: 0 } });
  assert.equal(again.repaired, false);
  assert.equal(store.audit.list().length, events.length);
});
