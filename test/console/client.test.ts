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

test('a console that cannot prove it holds the token (another token, another process on the port) never receives it; no server gives unavailable', async () => {
  await assert.rejects(createHttpApiClient(srv.url, 'wrong-token-0123456789').getStatus(),
    (e: unknown) => e instanceof AirlockError && e.code === 'unavailable' && /is not this data directory's Airlock gateway \(its proof is wrong\); the admin token was not sent/.test(e.message));
  // An impostor on a port a stale runtime.json names: answers everything with 200 and records what it gets.
  const { createServer } = await import('node:http');
  const seen: Array<string | undefined> = [];
  const impostor = createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ proof: 'f'.repeat(64), result: [] }));
  });
  await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', () => r()));
  try {
    const url = `http://127.0.0.1:${(impostor.address() as { port: number }).port}`;
    await assert.rejects(createHttpApiClient(url, TOKEN).listReviews({}), (e: unknown) => e instanceof AirlockError && e.code === 'unavailable');
    assert.deepEqual(seen, [undefined], 'only the proof request, without the token');
  } finally {
    impostor.close();
  }
  await assert.rejects(createHttpApiClient('http://127.0.0.1:1', TOKEN).getStatus(), (e: unknown) => e instanceof AirlockError && e.code === 'unavailable');
});
