// How `airlock exchange(s)` print a held push: its review's outcome, and its request body kept with the review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exchangeDetail, exchangesTable, heldBodyFile, heldOutcome } from '../../main/cli/format-record';
import type { ExchangeView } from '../../main/contract/views';
import type { ExchangeRecord } from '../../main/store';

const SHA = 'ab'.repeat(32);

function view(over: Partial<ExchangeView>): ExchangeView {
  return {
    id: '13', agent: 'bot', sessionId: null, kind: 'git-push', method: 'POST', scheme: 'https', host: 'github.com', port: 443,
    path: '/o/r.git/git-receive-pack', startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:01.000Z', status: 200,
    error: null, requestBytes: 495, responseBytes: 272, decision: { verdict: 'review', ruleId: 'builtin:hold-git-push', explanation: 'held' },
    reviewId: '3', timings: { totalMs: 1000, upstreamMs: null }, ...over,
  };
}

function record(over: Partial<ExchangeRecord>): ExchangeRecord {
  const v = view({});
  return {
    ...v, verdict: 'review', ruleId: 'builtin:hold-git-push', explanation: 'held',
    timings: { connectMs: null, tlsMs: null, upstreamMs: null, totalMs: 1000 },
    requestHeaders: { 'content-length': '495' }, responseHeaders: { 'content-type': 'application/x-git-receive-pack-result' },
    requestBody: null, responseBody: Buffer.from('0013ok refs/heads/x\n'), requestBodyComplete: true, responseBodyComplete: true,
    requestBodySha256: SHA, responseBodySha256: null, ...over,
  } as ExchangeRecord;
}

test('the outcome of a held push: from the error the record sets, approved when forwarded cleanly, unknown for old rows', () => {
  assert.equal(heldOutcome(view({ error: 'review #3 denied by local:a: no; the push was not forwarded' })), 'denied');
  assert.equal(heldOutcome(view({ error: 'review #3 expired: after 1h; the push was not forwarded' })), 'expired');
  assert.equal(heldOutcome(view({ error: 'review #3 approved; upstream answered HTTP 500' })), 'approved');
  assert.equal(heldOutcome(view({})), 'approved');
  // Recorded before the outcome was written: a denied push counted no bytes; nothing is guessed.
  assert.equal(heldOutcome(view({ requestBytes: 0 })), null);
  assert.equal(heldOutcome(view({ reviewId: null })), null);
  const table = exchangesTable([view({ error: 'review #3 denied by local:a: no; the push was not forwarded' }), view({ id: '14', reviewId: '4' }), view({ id: '15', reviewId: null, decision: { verdict: 'allow', ruleId: 'r', explanation: 'e' } })]);
  assert.match(table, /git-push\s+review #3 denied\s+200/);
  assert.match(table, /git-push\s+review #4 approved\s+200/);
  assert.match(table, /git-push\s+allow\s+200/);
});

test('a held push request body is kept with its review (not "capture off"); --body finds its file or says it was pruned', () => {
  const x = record({});
  const out = exchangeDetail(x);
  assert.match(out, new RegExp(`> request body: 495 bytes, kept with review #3 \\(airlock show 3; <data-dir>/pushes/${SHA}\\.body\\)`));
  assert.doesNotMatch(out, /capture off/);
  assert.match(out, /review {4}#3 approved \(airlock show 3\)/);
  assert.match(exchangeDetail(x, { dataDir: '/home/me/.airlock' }), new RegExp(`; /home/me/\\.airlock/pushes/${SHA}\\.body\\)`));
  // Another exchange's body not kept is still "not kept".
  assert.match(exchangeDetail(record({ reviewId: null })), /request body: 495 sent, not kept/);

  assert.deepEqual(heldBodyFile(x, 'request', '/d', () => true), { path: `/d/pushes/${SHA}.body` });
  const gone = heldBodyFile(x, 'request', '/d', () => false);
  assert.ok(gone && 'pruned' in gone);
  assert.match(gone.pruned, /kept with review #3 as \/d\/pushes\/.*\.body, which is gone \(pushes are pruned after retentionDays\)/);
  assert.equal(heldBodyFile(x, 'response', '/d', () => true), null);
  assert.equal(heldBodyFile(record({ reviewId: null }), 'request', '/d', () => true), null);
});
