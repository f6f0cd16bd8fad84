import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../../main/store';

test('sorts keys recursively, no whitespace', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }), '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
});

test('follows JSON.stringify for odd values', () => {
  assert.equal(canonicalJson(undefined), 'null');
  assert.equal(canonicalJson(null), 'null');
  assert.equal(canonicalJson({ a: undefined, b: () => 1, c: NaN, d: Infinity }), '{"c":null,"d":null}');
  assert.equal(canonicalJson([undefined, () => 1]), '[null,null]');
  assert.equal(canonicalJson(new Date('2026-01-01T00:00:00Z')), '"2026-01-01T00:00:00.000Z"');
  assert.equal(canonicalJson('é"\n\u2028'), JSON.stringify('é"\n\u2028'));
  assert.equal(canonicalJson(-0), '0');
  assert.throws(() => canonicalJson(1n));
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  assert.throws(() => canonicalJson(loop), /circular/);
  const shared = { x: 1 };
  assert.equal(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]');
});

test('is stable through a JSON round trip', () => {
  const v = { z: [1.5, 1e21, 'a'], a: { '\u00e9': true, B: false, b: null }, '': 0 };
  const c = canonicalJson(v);
  assert.equal(canonicalJson(JSON.parse(c)), c);
  assert.equal(canonicalJson(JSON.parse(JSON.stringify(v))), c);
});
