// A failure inside Airlock while it handles one request (here: the agent lookup fails because the
// database lost a table) answers that request with 500 and the reason; the process keeps serving.
// Real in-process gateway, real SQLite file, real curl; the damage is done with SQL on the store's
// own connection (a damaged database is what a crash or a careless edit leaves behind).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { createLogger } from '../../main/log';
import { startTestAirlock, type TestAirlock } from '../helpers/airlock';
import { createTestPki } from '../helpers/test-ca';
import { startUpstream, type Upstream } from '../helpers/https-upstream';
import { curlVia, type CurlTarget } from './client';

let upstream: Upstream;
let airlock: TestAirlock;
let db: Database.Database;
const logLines: string[] = [];

before(async () => {
  const pki = await createTestPki();
  upstream = await startUpstream({ pki });
  airlock = await startTestAirlock({
    upstreamCa: [pki.caPath], options: { consolePort: null }, log: createLogger('error', (l) => logLines.push(l)),
    testStoreConnection: (c) => (db = c),
  });
});

after(async () => {
  await airlock?.close();
  await upstream?.close();
});

async function agent(name: string): Promise<CurlTarget> {
  return { proxyUrl: airlock.proxyUrl, caPath: airlock.caPath, user: name, token: await airlock.addAgent(name) };
}

test('an exception while handling a CONNECT or a plain request is a 500 with the reason, and the proxy keeps serving', async () => {
  const known = await agent('known');
  const later = await agent('later');
  const warm = await curlVia(known, ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${upstream.url}/hello`]);
  assert.equal(warm.stdout, '200'); // `known` is now in the 5 s credential cache

  db.exec('DROP TABLE agent_tokens');
  const tls = await curlVia(later, ['-s', '-i', `${upstream.url}/hello?broken`]);
  assert.match(tls.stdout, /^HTTP\/1\.1 500 /m); // curl shows a refused CONNECT's status, not its body
  assert.match(tls.stderr, /CONNECT tunnel failed, response 500/);
  assert.ok(logLines.some((l) => /internal error handling a CONNECT .*no such table: agent_tokens.*stack=/.test(l)), logLines.join('\n'));
  const plain = await curlVia(later, ['-s', '-i', `http://127.0.0.1:${upstream.port}/hello?broken-plain`]);
  assert.match(plain.stdout, /^HTTP\/1\.1 500 /m);
  assert.match(plain.stdout, /Airlock failed on this request: no such table: agent_tokens/);
  assert.ok(!upstream.requests.some((q) => q.url.includes('broken')), 'a request went upstream');

  // Same process, still serving.
  const again = await curlVia(known, ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${upstream.url}/hello?still`]);
  assert.equal(again.stdout, '200');
});
