// What live views get (the console's Activity rows, `airlock exchanges --follow`): the path and error as the
// record holds them, with recording on and with it off. A real in-process Airlock, curl through it, a real upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { hashToken, newAgentToken } from '../../main/agents/tokens';
import { createLogger } from '../../main/log';
import { startAirlock, type RunningAirlock } from '../../main/service';
import type { AirlockEvent, ExchangeView } from '../../main/contract/views';
import { createTestPki, makeTempDir, removeDir, runCommand, startUpstream, type TestPki, type Upstream } from '../helpers/index';
import { AIRLOCK_BIN, cliEnv, waitFor } from './cli';

const SECRET = 'LIVESECRET-abcdef123';
let pki: TestPki;
let upstream: Upstream;
const running: RunningAirlock[] = [];
const dirs: string[] = [];

before(async () => {
  pki = await createTestPki();
  upstream = await startUpstream({ pki });
});

after(async () => {
  for (const r of running) await r.service.close();
  await upstream?.close();
  for (const d of dirs) await removeDir(d);
});

/** A fresh in-process gateway (its own data dir) and a token of agent live-bot. */
async function gateway(record = true): Promise<{ airlock: RunningAirlock; token: string }> {
  const dataDir = await makeTempDir('airlock-live-mask-');
  dirs.push(dataDir);
  const airlock = await startAirlock({ dataDir, log: createLogger('error'), proxyPort: 0, consolePort: null, upstreamCa: [pki.caPath], record });
  running.push(airlock);
  const token = newAgentToken();
  airlock.service.store.agents.add('live-bot', ['ai-coding']);
  airlock.service.store.agents.addToken('live-bot', hashToken(token), 'test', null);
  return { airlock, token };
}

async function liveRow(record: boolean): Promise<{ live: ExchangeView; airlock: RunningAirlock }> {
  const { airlock, token } = await gateway(record);
  const events: AirlockEvent[] = [];
  airlock.service.subscribe((e) => events.push(e));
  const r = await runCommand('curl', ['-sS', '--max-time', '15', '--proxy', airlock.proxyUrl, '--proxy-user', `live-bot:${token}`, '--cacert', airlock.caPath,
    '-H', `X-Api-Key: ${SECRET}`, `${upstream.url}/hello/${SECRET}?api_key=${SECRET}&n=1`], { env: cliEnv(), timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  const live = await waitFor('the live row', () => events.find((e): e is Extract<AirlockEvent, { type: 'exchange' }> => e.type === 'exchange')?.exchange, 5_000);
  return { live, airlock };
}

test('recording on: the live row is the recorded row (path masked the same way)', async () => {
  const { live, airlock } = await liveRow(true);
  assert.equal(live.path, '/hello/[masked]?api_key=[masked]&n=1');
  airlock.service.store.exchanges.flush();
  assert.equal(airlock.service.store.exchanges.get(live.id)!.path, live.path);
});

test('recording off: the live row still masks the exchange\'s own header secret and sensitive query values', async () => {
  const { live } = await liveRow(false);
  assert.equal(live.path, '/hello/[masked]?api_key=[masked]&n=1');
  assert.equal(JSON.stringify(live).includes(SECRET), false);
});

test('a credential set by the CLI while the gateway runs is masked in a plain-HTTP path that never looks it up', async () => {
  const plainUp = await startUpstream({ pki, tls: false });
  try {
    const { airlock, token } = await gateway();
    const dataDir = dirname(airlock.service.store.file);
    const secret = 'STOREDCREDSECRET777';
    // Another process stores it, as a user would while the gateway runs.
    const set = await runCommand(process.execPath, [AIRLOCK_BIN, 'credential', 'set', 'api.example.com', '--bearer', '--data-dir', dataDir],
      { env: cliEnv(), input: `${secret}\n`, timeoutMs: 30_000 });
    assert.equal(set.code, 0, set.stderr);
    const events: AirlockEvent[] = [];
    airlock.service.subscribe((e) => events.push(e));
    const r = await runCommand('curl', ['-sS', '--max-time', '15', '--proxy', airlock.proxyUrl, '--proxy-user', `live-bot:${token}`,
      `${plainUp.url}/leak/${secret}`], { env: cliEnv(), timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    const live = await waitFor('the live row', () => events.find((e): e is Extract<AirlockEvent, { type: 'exchange' }> => e.type === 'exchange')?.exchange, 5_000);
    assert.equal(live.path, '/leak/[masked]');
    airlock.service.store.exchanges.flush();
    assert.equal(airlock.service.store.exchanges.get(live.id)!.path, '/leak/[masked]');
  } finally {
    await plainUp.close();
  }
});

test('a sensitive query value echoed by the upstream in a body is masked there too (the request body too)', async () => {
  const { airlock, token } = await gateway();
  const secret = 'QSECRET-0123456789';
  const r = await runCommand('curl', ['-sS', '--max-time', '15', '--proxy', airlock.proxyUrl, '--proxy-user', `live-bot:${token}`, '--cacert', airlock.caPath,
    '--data-binary', `the token ${secret} again`, `${upstream.url}/echo?access_token=${secret}&x=1`], { env: cliEnv(), timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `the token ${secret} again`, 'the agent gets the answer as sent');
  const x = await waitFor('the exchange', () => {
    airlock.service.store.exchanges.flush();
    const v = airlock.service.store.exchanges.list({ limit: 10 }).find((e) => e.path.startsWith('/echo?'));
    return v ? airlock.service.store.exchanges.get(v.id)! : undefined;
  }, 5_000);
  assert.equal(x.path, '/echo?access_token=[masked]&x=1');
  assert.equal(x.requestBody!.toString(), 'the token [masked] again');
  assert.equal(x.responseBody!.toString(), 'the token [masked] again');
  assert.equal(readFileSync(airlock.service.store.file).includes(secret), false, 'the secret is in the database file');
});
