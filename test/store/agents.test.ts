import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AirlockError } from '../../main/contract/errors';
import { tempStores } from './helpers';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const fresh = tempStores('airlock-agents-');

test('add, get, list, remove agents', async () => {
  const { store, clock } = await fresh();
  const a = store.agents.add('claude-1', ['coders']);
  assert.deepEqual(a, { name: 'claude-1', groups: ['coders'], createdAt: clock.now().toISOString() });
  store.agents.add('Bot.2_x', []);
  assert.deepEqual(store.agents.get('claude-1'), a);
  assert.equal(store.agents.get('nobody'), null);
  assert.deepEqual(store.agents.list().map((x) => x.name), ['Bot.2_x', 'claude-1']);
  assert.equal(store.agents.remove('claude-1'), true);
  assert.equal(store.agents.remove('claude-1'), false);
  assert.deepEqual(store.agents.list().map((x) => x.name), ['Bot.2_x']);
});

test('duplicate name is a conflict; bad names are bad requests', async () => {
  const { store } = await fresh();
  store.agents.add('a', []);
  assert.throws(() => store.agents.add('a', []), (e: unknown) => e instanceof AirlockError && e.code === 'conflict');
  for (const bad of ['', '-x', '.x', 'has space', 'a/b', 'x'.repeat(65), 'ünï']) {
    assert.throws(() => store.agents.add(bad, []), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request', bad);
  }
  store.agents.add('x'.repeat(64), []);
});

test('token lookup: right agent, wrong agent, unknown, expired, removed', async () => {
  const { store, clock } = await fresh();
  store.agents.add('alice', ['g']);
  store.agents.add('bob', []);
  const t1 = sha('token-one');
  const t2 = sha('token-two');
  store.agents.addToken('alice', t1, 'laptop', null);
  store.agents.addToken('bob', t2, 'ci', '2026-01-02T00:00:00Z');

  assert.equal(store.agents.findByToken('alice', t1)?.name, 'alice');
  assert.equal(store.agents.findByToken('alice', t1.toUpperCase())?.name, 'alice');
  assert.equal(store.agents.findByToken('bob', t1), null, 'token of another agent');
  assert.equal(store.agents.findByToken('alice', t2), null, 'token of another agent');
  assert.equal(store.agents.findByToken('carol', t1), null, 'unknown agent');
  assert.equal(store.agents.findByToken('alice', sha('nope')), null, 'unknown token');

  assert.equal(store.agents.findByToken('bob', t2)?.name, 'bob');
  assert.equal(store.agents.findByToken('bob', t2, new Date('2026-01-01T23:59:59.999Z'))?.name, 'bob');
  assert.equal(store.agents.findByToken('bob', t2, new Date('2026-01-02T00:00:00.000Z')), null, 'expired at expiry');
  clock.set('2026-01-03T00:00:00Z');
  assert.equal(store.agents.findByToken('bob', t2), null, 'expired by the store clock');

  assert.deepEqual(store.agents.tokens('bob').map((t) => [t.label, t.expiresAt]), [['ci', '2026-01-02T00:00:00.000Z']]);
  store.agents.removeToken(t1);
  assert.equal(store.agents.findByToken('alice', t1), null);
});

test('token validation and cascade on agent removal', async () => {
  const { store } = await fresh();
  store.agents.add('alice', []);
  const t = sha('x');
  assert.throws(() => store.agents.addToken('nobody', t, '', null), (e: unknown) => e instanceof AirlockError && e.code === 'not-found');
  assert.throws(() => store.agents.addToken('alice', 'abc', '', null), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request');
  assert.throws(() => store.agents.addToken('alice', t, '', 'not a date'), (e: unknown) => e instanceof AirlockError && e.code === 'bad-request');
  store.agents.addToken('alice', t, 'one', null);
  assert.throws(() => store.agents.addToken('alice', t, 'again', null), (e: unknown) => e instanceof AirlockError && e.code === 'conflict');
  store.agents.remove('alice');
  store.agents.add('alice', []);
  assert.equal(store.agents.findByToken('alice', t), null, 'tokens went with the removed agent');
  assert.deepEqual(store.agents.tokens('alice'), []);
});
