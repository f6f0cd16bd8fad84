import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CaError, validateHostname } from '../../certs/index';
import { leafFileName } from '../../certs/hostname';

test('accepts and normalises DNS names and IP addresses', () => {
  const ok: Array<[string, 'dns' | 'ip', string]> = [
    ['example.com', 'dns', 'example.com'],
    ['Example.COM', 'dns', 'example.com'],
    ['example.com.', 'dns', 'example.com'],
    ['localhost', 'dns', 'localhost'],
    ['a-b.c-d.example', 'dns', 'a-b.c-d.example'],
    ['_dmarc.example.com', 'dns', '_dmarc.example.com'],
    ['my_host.internal', 'dns', 'my_host.internal'],
    ['xn--bcher-kva.example', 'dns', 'xn--bcher-kva.example'],
    ['1password.com', 'dns', '1password.com'],
    [`${'a'.repeat(63)}.com`, 'dns', `${'a'.repeat(63)}.com`],
    [Array(4).fill('a'.repeat(62)).join('.') + '.b', 'dns', Array(4).fill('a'.repeat(62)).join('.') + '.b'], // 253
    ['127.0.0.1', 'ip', '127.0.0.1'],
    ['0.0.0.0', 'ip', '0.0.0.0'],
    ['255.255.255.255', 'ip', '255.255.255.255'],
    ['::1', 'ip', '::1'],
    ['[::1]', 'ip', '::1'],
    ['0:0:0:0:0:0:0:1', 'ip', '::1'],
    ['2001:DB8::A', 'ip', '2001:db8::a'],
    ['[2001:db8:0:0:0:0:2:1]', 'ip', '2001:db8::2:1'],
    ['::ffff:1.2.3.4', 'ip', '::ffff:102:304'],
  ];
  for (const [input, type, value] of ok) {
    assert.deepEqual(validateHostname(input), { type, value }, input);
  }
});

test('rejects unsafe or malformed host names with a CaError', () => {
  const bad = [
    '', '.', '*', '*.example.com', 'a.*.example.com', 'foo*.example.com',
    '../../etc/passwd', 'a/../../b', '..', '.hidden', 'a..b', '%2e%2e', '%2e%2e%2fetc', 'x\u0000y', 'x\ny',
    'a b.com', ' example.com', 'example.com ', 'a\\b', 'a/b', 'example.com:443', 'user@example.com', 'a?b', 'a#b',
    '-lead.example.com', 'trail-.example.com', 'bücher.example', 'пример.рф', 'exa\u200bmple.com',
    `${'a'.repeat(64)}.com`, Array(5).fill('a'.repeat(62)).join('.'), 'a'.repeat(1000),
    '256.1.1.1', '1.2.3.04', '01.2.3.4', '1.2.3', '1.2.3.4.5', '0x7f.0.0.1', '127.1',
    '[example.com]', '[::1', '::1]', 'fe80::1%eth0', '[fe80::1%25eth0]', ':::', '1::2::3', 'example.com..',
  ];
  for (const input of bad) {
    assert.throws(() => validateHostname(input), (err: unknown) => {
      assert.ok(err instanceof CaError, `${JSON.stringify(input)} threw a non-CaError`);
      assert.match(err.message, /^Invalid host name /);
      assert.equal(err.code, 'bad-request');
      return true;
    }, JSON.stringify(input));
  }
});

test('cache file names stay inside the leaves directory', () => {
  for (const host of ['example.com', '127.0.0.1', '::1', '2001:db8::2:1', '_x.y', 'a-b']) {
    const name = leafFileName(validateHostname(host));
    assert.match(name, /^[a-z0-9_-][a-z0-9._-]*\.pem$/, host);
    assert.ok(!name.includes('..') && !name.includes('/') && !name.includes('\\'), host);
  }
  assert.equal(leafFileName(validateHostname('[::1]')), '__1.pem');
});

test('Windows device names (con, nul, aux, prn, com1-9, lpt1-9, with anything after a dot) get a file name that is not one', () => {
  for (const host of ['con', 'nul', 'aux.example.com', 'prn', 'com1', 'lpt9.corp']) {
    const name = leafFileName(validateHostname(host));
    assert.equal(name, `+${host}.pem`, host);
  }
  for (const host of ['console.example.com', 'com10', 'nullable.dev', 'com', 'xcon']) {
    assert.equal(leafFileName(validateHostname(host)), `${host}.pem`, host);
  }
});
