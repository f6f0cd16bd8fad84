// isoTime (the record stage's timestamps) is exactly Date#toISOString, with the second's prefix kept between calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from '../../main/pipeline/stages/record';

test('isoTime equals toISOString: in order, out of order, at second, year and range edges, fractional ms', () => {
  const now = Date.now();
  const values: number[] = [];
  for (let i = 0; i < 5000; i++) values.push(now + i * 7); // the usual case: many calls within each second, in order
  for (let i = 0; i < 5000; i++) values.push(Math.floor(Math.random() * 253_402_300_799_999)); // any second, any order
  values.push(0, 1, 999, 1000, 1001, 59_999, 60_000, 946_684_799_999, 946_684_800_000, 253_402_300_799_999);
  values.push(now + 0.9, now + 999.99, 1.5); // Date truncates fractions
  values.push(253_402_300_800_000, -1, -62_198_755_200_000, 8.64e15); // outside 0000–9999: toISOString's own (extended) form
  for (const ms of values) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
    assert.equal(isoTime(now), new Date(now).toISOString(), `${now} after ${ms}`); // the cache is never stale
  }
});
