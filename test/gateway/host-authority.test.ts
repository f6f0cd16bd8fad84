// The Host-header memo in front of parseAuthority: same answers as the parser, for every input,
// in any order (a value cached for one default port never answers for another), and bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostAuthority, parseAuthority } from '../../main/gateway/proxy';

const inputs: Array<[string, number]> = [
  ['example.com', 443], ['example.com', 80], ['example.com:8443', 443], ['EXAMPLE.com', 443],
  ['127.0.0.1', 80], ['[::1]:8080', 443], ['x', 80], ['80 x', 443], ['80|x', 443], ['x', 443],
  ['a b', 443], ['*.example.com', 443], ['../etc', 443], ['example.com:0', 443], ['example.com:99999', 80],
  ['', 443], ['host:', 443], ['[::1', 443], ['xn--bcher-kva.example', 443],
];

test('hostAuthority answers exactly as parseAuthority, cold and memoised, in both orders', () => {
  for (const order of [inputs, [...inputs].reverse()]) {
    for (let pass = 0; pass < 2; pass++) {
      for (const [h, port] of order) {
        assert.deepEqual(hostAuthority(h, port), parseAuthority(h, port), `${JSON.stringify(h)} with default port ${port}`);
      }
    }
  }
  // The collision a naive key would have: "80 x" over HTTPS is not "x" on port 80.
  assert.deepEqual(hostAuthority('x', 80), { host: 'x', port: 80 });
  assert.equal(hostAuthority('80 x', 443), null);
});

test('memoised results are frozen and the memo stays correct past its bound', () => {
  const r = hostAuthority('frozen.example', 443)!;
  assert.ok(Object.isFrozen(r));
  assert.throws(() => {
    (r as { host: string }).host = 'evil.example';
  }, TypeError);
  for (let i = 0; i < 1500; i++) assert.deepEqual(hostAuthority(`h${i}.example:${1 + (i % 60000)}`, 443), { host: `h${i}.example`, port: 1 + (i % 60000) });
  assert.equal(hostAuthority('frozen.example', 443)!.host, 'frozen.example');
});
