import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskHeaders, maskText } from '../../main/store';
import { maskBody, maskedHeadersJson, normalizeSecrets } from '../../main/store/mask';

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
