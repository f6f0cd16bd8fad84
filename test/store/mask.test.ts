import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskHeaders, maskText } from '../../main/store';
import { maskBody, normalizeSecrets } from '../../main/store/mask';

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
