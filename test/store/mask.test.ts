import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskHeaders, maskText } from '../../main/store';
import { isSensitiveHeader, maskBody, maskedHeadersJson, maskQuery, normalizeSecrets } from '../../main/store/mask';

test('maskHeaders: credential headers by name (any case), secrets inside other values, undefined dropped', () => {
  const out = maskHeaders(
    {
      AUTHORIZATION: 'Bearer abc',
      'Proxy-Authorization': 'Basic xyz',
      cookie: 'a=1',
      'set-cookie': ['a=1', 'b=2'],
      'x-api-key': 'k',
      'x-forwarded': 'via supersecret1 and supersecret1',
      'x-none': undefined,
      accept: '*/*',
    },
    ['supersecret1'],
  );
  assert.deepEqual(out, {
    AUTHORIZATION: '[masked]',
    'Proxy-Authorization': '[masked]',
    cookie: '[masked]',
    'set-cookie': ['[masked]', '[masked]'],
    'x-api-key': '[masked]',
    'x-forwarded': 'via [masked] and [masked]',
    accept: '*/*',
  });
});

test('maskedHeadersJson: the same JSON as maskHeaders in every case, including its fast path', () => {
  const secrets = normalizeSecrets(['supersecret1', 'quo"tedsecret', 'back\\slashsecret', 'line\nbreaksecret']);
  const cases: Array<Record<string, string | string[] | undefined>> = [
    { host: 'example.test', accept: '*/*' }, // nothing to mask: the fast path
    { host: 'example.test', 'set-cookie': ['a=1'] }, // sensitive name
    { Host: 'example.test', Authorization: 'Bearer x' }, // sensitive name in another case
    { 'x-a': 'via supersecret1' }, // a secret in a value
    { 'x-a': ['one', 'two supersecret1'] }, // in an array value
    { 'x-a': 'a quo"tedsecret here' }, // a secret JSON escapes: never looked for in the JSON text
    { 'x-a': 'a back\\slashsecret here' },
    { 'x-a': 'a line\nbreaksecret here' },
    { 'x-a': undefined, 'x-b': 'kept' }, // undefined dropped
    { 'content-length': 12 as unknown as string }, // a number from OutgoingHttpHeaders: stored as text
    { 'x-a': [1, 'two'] as unknown as string[] },
    {},
  ];
  for (const h of cases) {
    for (const list of [[], secrets]) {
      assert.equal(maskedHeadersJson(h, list), JSON.stringify(maskHeaders(h, list)), JSON.stringify(h));
    }
  }
  assert.equal(maskedHeadersJson({ 'x-a': 'a quo"tedsecret here' }, secrets), '{"x-a":"a [masked] here"}');
  assert.equal(maskedHeadersJson({ 'content-length': 12 as unknown as string }, []), '{"content-length":"12"}');
});

test('maskText: longest secret first, empty and tiny secrets ignored', () => {
  assert.equal(maskText('token=abcd1234efgh', ['abcd', 'abcd1234efgh']), 'token=[masked]');
  assert.equal(maskText('nothing here', ['', 'a', 'xyz']), 'nothing here');
  assert.deepEqual(normalizeSecrets(['aaaa', 'aaaa', 'bbbbbb', '']), ['bbbbbb', 'aaaa']);
});

test('maskBody: text masked, binary untouched, same buffer when nothing matches', () => {
  const s = normalizeSecrets(['tok-123456']);
  const plain = Buffer.from('hello');
  assert.equal(maskBody(plain, s), plain);
  assert.equal(maskBody(Buffer.from('a tok-123456 b'), s).toString(), 'a [masked] b');
  const bin = Buffer.from([0x00, 0xc3, 0x28, ...Buffer.from('tok-123456')]);
  assert.equal(maskBody(bin, s), bin);
});

test('credential headers of the APIs agents call are masked by name; ordinary headers are kept', () => {
  const masked = [
    'Authorization', 'Cookie', 'Set-Cookie', 'X-Api-Key', 'x-goog-api-key', 'api-key', 'PRIVATE-TOKEN', 'Job-Token',
    'X-Auth-Token', 'X-Vault-Token', 'X-Amz-Security-Token', 'DD-API-KEY', 'DD-APPLICATION-KEY', 'X-Hub-Signature-256',
    'X-Slack-Signature', 'X-Sentry-Auth', 'X-CSRF-Token', 'X-Session-Id', 'X-GitHub-OTP', 'X-Client-Secret', 'X-Password',
  ];
  const kept = [
    'Host', 'Accept', 'Content-Type', 'Content-Length', 'User-Agent', 'X-Request-Id', 'WWW-Authenticate', 'Proxy-Authenticate',
    'X-GitHub-Api-Version', 'X-Amz-Date', 'X-Amz-Content-Sha256', 'Anthropic-Version', 'OpenAI-Organization', 'Keep-Alive',
    'X-RateLimit-Remaining', 'ETag', 'Location', 'Cache-Control',
  ];
  for (const n of masked) assert.equal(isSensitiveHeader(n), true, n);
  for (const n of kept) assert.equal(isSensitiveHeader(n), false, n);
  const h = Object.fromEntries([...masked, ...kept].map((n) => [n, 'value-1']));
  const out = maskHeaders(h, []);
  for (const n of masked) assert.equal(out[n], '[masked]', n);
  for (const n of kept) assert.equal(out[n], 'value-1', n);
  assert.equal(maskedHeadersJson(h, []), JSON.stringify(out), 'the JSON path agrees');
});

test('maskQuery: values of token, key, secret and signature parameters; everything else as written', () => {
  assert.equal(maskQuery('/v1beta/models/gemini:generateContent?key=AIzaSyA1b2c3&alt=sse'),
    '/v1beta/models/gemini:generateContent?key=[masked]&alt=sse');
  assert.equal(maskQuery('/cb?code=4%2F0Ab&state=xyz'), '/cb?code=[masked]&state=xyz');
  assert.equal(maskQuery('/b/o.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ab12&X-Amz-Expires=60'),
    '/b/o.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[masked]&X-Amz-Signature=[masked]&X-Amz-Expires=60');
  assert.equal(maskQuery('/blob?sv=2024&sig=Zm9v%3D&se=2026'), '/blob?sv=2024&sig=[masked]&se=2026');
  assert.equal(maskQuery('/x?access_token=a&github_token=b&client_secret=c&my-api-key=d&page=2'),
    '/x?access_token=[masked]&github_token=[masked]&client_secret=[masked]&my-api-key=[masked]&page=2');
  assert.equal(maskQuery('/x?%74oken=a'), '/x?%74oken=[masked]', 'names are compared decoded');
  assert.equal(maskQuery('/x?TOKEN=a'), '/x?TOKEN=[masked]', 'in any case');
  for (const p of ['/plain/path', '/x?page=2&per_page=100', '/x?token=', '/x?token', '/x?%zz=1', '/x?']) assert.equal(maskQuery(p), p);
});
