import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePkt, decodePkts, FLUSH, DELIM, RESPONSE_END, pktText, GitProtocolError, MAX_PKT_DATA } from '../../main/git/index';

test('encodePkt frames strings and buffers with a 4-hex length', () => {
  assert.equal(encodePkt('hello\n').toString(), '000ahello\n');
  assert.equal(encodePkt(Buffer.alloc(0)).toString(), '0004');
  assert.equal(encodePkt(Buffer.from([0, 1, 2])).toString('hex'), Buffer.from('0007').toString('hex') + '000102');
  assert.equal(encodePkt('x'.repeat(MAX_PKT_DATA)).length, 65520);
  assert.throws(() => encodePkt('x'.repeat(MAX_PKT_DATA + 1)), GitProtocolError);
  assert.equal(FLUSH.toString(), '0000');
  assert.equal(DELIM.toString(), '0001');
  assert.equal(RESPONSE_END.toString(), '0002');
});

test('decodePkts reads up to and including the first flush', () => {
  const buf = Buffer.concat([encodePkt('a\n'), DELIM, encodePkt('b'), RESPONSE_END, FLUSH, encodePkt('after')]);
  const r = decodePkts(buf);
  assert.deepEqual(r.pkts.map((p) => p.type), ['data', 'delim', 'data', 'response-end', 'flush']);
  assert.equal(pktText(r.pkts[0].data!), 'a');
  assert.equal(r.pkts[2].data!.toString(), 'b');
  assert.equal(r.end, buf.length - encodePkt('after').length);
  const rest = decodePkts(buf, r.end);
  assert.equal(rest.pkts.length, 1);
  assert.equal(rest.end, buf.length);
  assert.deepEqual(decodePkts(Buffer.alloc(0)), { pkts: [], end: 0 });
  // uppercase hex is accepted
  assert.equal(decodePkts(Buffer.from('000Aabcdef')).pkts.length, 1);
});

test('decodePkts rejects every malformed length', () => {
  const cases: Array<[string, RegExp]> = [
    ['00zzdata', /4 hex digits/],
    ['0003', /reserved/],
    ['fff1' + 'x'.repeat(70000), /exceeds/],
    ['000ahel', /Truncated/],
    ['00', /Truncated/],
    ['0005a00', /Truncated/],
  ];
  for (const [input, re] of cases) {
    assert.throws(() => decodePkts(Buffer.from(input)), (e: unknown) => {
      assert.ok(e instanceof GitProtocolError, `not a GitProtocolError for ${input.slice(0, 10)}`);
      assert.ok(e instanceof Error);
      assert.match(e.message, re);
      assert.equal(e.code, 'bad-request');
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  }
});
