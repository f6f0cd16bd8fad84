import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createConsoleServer, type ConsoleServer } from '../../main/console/server';
import { createHttpApiClient } from '../../main/console/client';
import { AirlockError } from '../../main/contract';
import { createFixtureApi } from './fixture-api';
import { makeTempDir, removeDir } from '../helpers/tmp';

const TOKEN = 'client-token-0123456789abcdef';
let dir: string;
let srv: ConsoleServer;

before(async () => {
  dir = await makeTempDir('airlock-client-');
  srv = await createConsoleServer({ api: createFixtureApi(), token: TOKEN, port: 0, staticDir: dir });
});
after(async () => {
  await srv?.close();
  await removeDir(dir);
});

test('the Node client calls the API and rethrows AirlockError with the code', async () => {
  const client = createHttpApiClient(srv.url + '/', TOKEN);
  const [pending] = await client.listReviews({ state: 'pending' });
  assert.ok(pending);
  const approved = await client.approveReview({ id: pending.id });
  assert.equal(approved.state, 'approved');
  await assert.rejects(client.denyReview({ id: pending.id, reason: 'no' }), (e: unknown) => {
    assert.ok(e instanceof AirlockError);
    assert.equal(e.code, 'conflict');
    return true;
  });
});

test('wrong token gives unauthorized; no server gives unavailable', async () => {
  await assert.rejects(createHttpApiClient(srv.url, 'wrong').getStatus(), (e: unknown) => e instanceof AirlockError && e.code === 'unauthorized');
  await assert.rejects(createHttpApiClient('http://127.0.0.1:1', TOKEN).getStatus(), (e: unknown) => e instanceof AirlockError && e.code === 'unavailable');
});
