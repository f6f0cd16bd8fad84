// The review methods of the API (what the console and the desktop app call) refuse malformed input
// with a clear bad-request error, never a TypeError (500) nor a reason of "[object Object]".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AirlockError } from '../../main/contract/errors';
import { startTestAirlock, type TestAirlock } from '../helpers/airlock';

let al: TestAirlock;
before(async () => {
  al = await startTestAirlock({ options: { consolePort: null } });
});
after(async () => {
  await al?.close();
});

const badRequest = (re: RegExp) => (e: unknown) => e instanceof AirlockError && e.code === 'bad-request' && re.test(e.message);

test('approveReview, denyReview, getReview, listReviews: wrong types and unknown states are bad requests', async () => {
  const api = al.service;
  await assert.rejects(api.approveReview({ id: '1', reason: 5 as unknown as string }), badRequest(/"reason" must be text/));
  await assert.rejects(api.approveReview({ id: '1', reason: { x: 1 } as unknown as string }), badRequest(/"reason" must be text/));
  await assert.rejects(api.denyReview({ id: '1', reason: { x: 1 } as unknown as string }), badRequest(/"reason" must be text/));
  await assert.rejects(api.denyReview({ id: { x: 1 } as unknown as string, reason: 'no' }), badRequest(/review id must be given/));
  await assert.rejects(api.approveReview({ id: '1', by: 'someone else' } as unknown as { id: string }), badRequest(/Unknown approveReview filter "by"/));
  await assert.rejects(api.getReview(null as unknown as { id: string }), badRequest(/review id must be given/));
  await assert.rejects(api.listReviews({ state: { x: 1 } as unknown as 'pending' }), badRequest(/"state" must be text/));
  await assert.rejects(api.listReviews({ state: 'bogus' as 'pending' }), badRequest(/"state" must be one of pending, approved, denied, expired, interrupted/));
  assert.deepEqual(await api.listReviews({ state: 'pending' }), []);
  assert.deepEqual(await api.listReviews({}), []);
  await assert.rejects(api.approveReview({ id: '1' }), (e: unknown) => e instanceof AirlockError && e.code === 'not-found');
});
