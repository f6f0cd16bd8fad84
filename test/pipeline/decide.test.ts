// The built-in policy: which request gets which verdict, and which hosts count as this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Exchange } from '../../main/exchange/exchange';
import { classifyStage } from '../../main/pipeline/stages/classify';
import { createDecideStage, isLoopbackHost } from '../../main/pipeline/stages/decide';
import { validateHostname } from '../../certs';

test('isLoopbackHost: every name and address form that reaches 127.0.0.1 or ::1, and nothing else', () => {
  const yes = ['localhost', 'LOCALHOST.', 'app.localhost', '127.0.0.1', '127.1.2.3', '0.0.0.0', '0.1.2.3', '[::1]', '[::]', '[::ffff:127.0.0.1]', '[0:0:0:0:0:0:0:1]',
    // 0.0.0.0 reaches 127.0.0.1 on Linux, so do its IPv4-mapped spellings (an agent reached the console with these)
    '[::ffff:0.0.0.0]', '[::ffff:0:0]', '[0:0:0:0:0:ffff:0:0]', '[::FFFF:7F00:1]', '[::ffff:127.255.0.9]', '[::127.0.0.1]', '[::0.0.0.1]'];
  const no = ['github.com', '10.0.0.1', '192.168.1.10', '128.0.0.1', 'localhost.example.com', 'mylocalhost', '[2001::2:3]', '[2001:db8::1]',
    '[::ffff:10.0.0.1]', '[::ffff:128.0.0.1]', '[64:ff9b::7f00:1]', '[fe80::1]'];
  for (const h of yes) assert.equal(isLoopbackHost(validateHostname(h).value), true, h);
  for (const h of no) assert.equal(isLoopbackHost(validateHostname(h).value), false, h);
});

test("requests to Airlock's own ports are denied; a push elsewhere is held; the rest is allowed", () => {
  const own = new Set([8899, 8898]);
  const stage = createDecideStage(own);
  const decide = (method: string, host: string, port: number, path: string) => {
    const ex = new Exchange('1', { name: 'bot', groups: [] }, 's', method, 'http', host, port, path, {}, '127.0.0.1');
    classifyStage.onRequest!(ex, null as never); // neither stage touches the request stream
    stage.onRequest!(ex, null as never);
    return ex.decision!.ruleId;
  };
  assert.equal(decide('POST', '127.0.0.1', 8898, '/api/approveReview'), 'builtin:deny-airlock-itself');
  assert.equal(decide('GET', 'localhost', 8899, '/'), 'builtin:deny-airlock-itself');
  assert.equal(decide('POST', '127.0.0.1', 8898, '/x.git/git-receive-pack'), 'builtin:deny-airlock-itself', 'before the push rule');
  assert.equal(decide('POST', '127.0.0.1', 9000, '/x.git/git-receive-pack'), 'builtin:hold-git-push');
  assert.equal(decide('GET', '127.0.0.1', 9000, '/'), 'builtin:allow-other', 'another local port is allowed');
  assert.equal(decide('GET', 'example.com', 8898, '/'), 'builtin:allow-other', 'the same port elsewhere is allowed');
  own.delete(8898);
  assert.equal(decide('GET', '127.0.0.1', 8898, '/'), 'builtin:allow-other', 'ports are read at each request');
});

test("with an upstream proxy set, requests to its address are denied (after Airlock's own ports), and the audit's rules say so", async () => {
  const { builtinRules } = await import('../../main/pipeline/stages/decide');
  const stage = createDecideStage(new Set([8899]), { host: 'proxy.corp', port: 3128 });
  const decide = (host: string, port: number) => {
    const ex = new Exchange('1', { name: 'bot', groups: [] }, 's', 'GET', 'http', validateHostname(host).value, port, '/', {}, '127.0.0.1');
    classifyStage.onRequest!(ex, null as never);
    stage.onRequest!(ex, null as never);
    return ex.decision!.ruleId;
  };
  assert.equal(decide('proxy.corp', 3128), 'builtin:deny-upstream-proxy');
  assert.equal(decide('PROXY.CORP.', 3128), 'builtin:deny-upstream-proxy');
  assert.equal(decide('proxy.corp', 443), 'builtin:allow-other');
  assert.equal(decide('localhost', 8899), 'builtin:deny-airlock-itself');
  assert.deepEqual(builtinRules({ host: 'proxy.corp', port: 3128 }).map((r) => r.id),
    ['builtin:deny-airlock-itself', 'builtin:deny-upstream-proxy', 'builtin:hold-git-push', 'builtin:allow-other']);
  assert.deepEqual(builtinRules(null).map((r) => r.id), ['builtin:deny-airlock-itself', 'builtin:hold-git-push', 'builtin:allow-other']);
});
