// guardedLookup: a name on one of Airlock's own ports that resolves to this machine, in any spelling, is refused.
// The resolver is a fake (named as such): no DNS server here answers with ::ffff:0.0.0.0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type dns from 'node:dns';
import { guardedLookup } from '../../main/gateway/upstream';
import { isThisMachineAddress } from '../../main/gateway/this-machine';

function fakeResolver(addresses: string[]) {
  return (_h: string, _o: dns.LookupAllOptions, cb: (e: NodeJS.ErrnoException | null, a: dns.LookupAddress[]) => void) =>
    cb(null, addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
}

function resolve(port: number, addresses: string[]): Promise<{ err: NodeJS.ErrnoException | null; address: unknown }> {
  return new Promise((r) => guardedLookup(port, new Set([8898]), fakeResolver(addresses))('name.example', {}, (err, address) => r({ err, address })));
}

test('guardedLookup refuses every spelling of this machine on an own port, and nothing else', async () => {
  for (const a of ['127.0.0.1', '0.0.0.0', '::1', '::', '::ffff:0.0.0.0', '0:0:0:0:0:ffff:0:0', '::ffff:7f00:1']) {
    const r = await resolve(8898, ['10.0.0.1', a]);
    assert.equal(r.err?.code, 'EAIRLOCKSELF', a);
  }
  assert.equal((await resolve(8898, ['10.0.0.1', '2001:db8::1'])).address, '10.0.0.1');
  assert.equal((await resolve(443, ['::ffff:0.0.0.0'])).address, '::ffff:0.0.0.0', 'other ports: any address');
});

test('isThisMachineAddress: addresses only (names are not addresses)', () => {
  assert.equal(isThisMachineAddress('localhost'), false);
  assert.equal(isThisMachineAddress('127.0.0.1.example'), false);
  assert.equal(isThisMachineAddress('fe80::1%eth0'), false);
  assert.equal(isThisMachineAddress('::FFFF:127.0.0.1'), true);
});
