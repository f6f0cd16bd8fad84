// A failure inside Airlock while it handles one request (here: the agent lookup fails because the
// database lost a table) answers that request with 500 and the reason; the process keeps serving.
// Real in-process gateway, real SQLite file, real curl; the damage is done with SQL on the store's
// own connection (a damaged database is what a crash or a careless edit leaves behind).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { createLogger } from '../../main/log';
import { startAirlock, type AirlockService } from '../../main/service';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import { createTestPki } from '../helpers/test-ca';
import { startUpstream, type Upstream } from '../helpers/https-upstream';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { curlVia, type CurlTarget } from './client';

let upstream: Upstream;
let dataDir: string;
let service: AirlockService;
let db: Database.Database;
let proxyUrl: string;
let caPath: string;
const logLines: string[] = [];

before(async () => {
  const pki = await createTestPki();
  upstream = await startUpstream({ pki });
  dataDir = await makeTempDir('airlock-internal-error-');
  const running = await startAirlock({
    dataDir, log: createLogger('error', (l) => logLines.push(l)), proxyPort: 0, consolePort: null, upstreamCa: [pki.caPath],
    testStoreConnection: (c) => (db = c),
  });
  service = running.service;
  proxyUrl = running.proxyUrl;
  caPath = running.caPath;
});

after(async () => {
  await service?.close();
  await upstream?.close();
  if (dataDir) await removeDir(dataDir);
});

function agent(name: string): CurlTarget {
  service.store.agents.add(name, ['ai-coding']);
  const token = newAgentToken();
  service.store.agents.addToken(name, hashToken(token), 'test', null);
  return { proxyUrl, caPath, user: name, token };
}

test('an exception while handling a CONNECT or a plain request is a 500 with the reason, and the proxy keeps serving', async () => {
  const known = agent('known');
  const later = agent('later');
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
