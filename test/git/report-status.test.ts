import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildReceivePackResult, sideBandProgress, decodePkts, describeReport, encodePkt, parseReceivePackResult, RECEIVE_PACK_RESULT_CONTENT_TYPE, sanitizeReason,
} from '../../main/git/index';

function reportLines(buf: Buffer): string[] {
  const { pkts, end } = decodePkts(buf);
  assert.equal(end, buf.length);
  return pkts.map((p) => (p.type === 'data' ? p.data!.toString() : p.type));
}

/** Demultiplexes a side-band stream: returns band-1 bytes and band-2 text, checking packet sizes. */
function demux(buf: Buffer, max: number): { band1: Buffer; band2: string } {
  const { pkts, end } = decodePkts(buf);
  assert.equal(end, buf.length);
  assert.equal(pkts[pkts.length - 1].type, 'flush');
  const b1: Buffer[] = [];
  let band2 = '';
  for (const p of pkts.slice(0, -1)) {
    assert.equal(p.type, 'data');
    assert.ok(p.data!.length + 4 <= max, `packet of ${p.data!.length + 4} > ${max}`);
    if (p.data![0] === 1) b1.push(p.data!.subarray(1));
    else if (p.data![0] === 2) band2 += p.data!.subarray(1).toString();
    else assert.fail(`band ${p.data![0]}`);
  }
  return { band1: Buffer.concat(b1), band2 };
}

test('plain report-status', () => {
  const buf = buildReceivePackResult({
    unpackOk: true,
    refs: [{ ref: 'refs/heads/a', ok: true }, { ref: 'refs/heads/main', ok: false, reason: 'denied by alice:\r\nno secrets' }],
    sideBand: null,
  });
  assert.deepEqual(reportLines(buf), ['unpack ok\n', 'ok refs/heads/a\n', 'ng refs/heads/main denied by alice: no secrets\n', 'flush']);
  assert.equal(RECEIVE_PACK_RESULT_CONTENT_TYPE, 'application/x-git-receive-pack-result');
  const bad = buildReceivePackResult({ unpackOk: 'index-pack\nfailed', refs: [{ ref: 'refs/heads/x', ok: false, reason: '' }], sideBand: null });
  assert.deepEqual(reportLines(bad), ['unpack index-pack failed\n', 'ng refs/heads/x rejected\n', 'flush']);
});

test('side-band report respects the packet maximum and carries progress on band 2', () => {
  const refs = Array.from({ length: 400 }, (_, i) => ({ ref: `refs/heads/branch-${i}`, ok: false as const, reason: 'held '.repeat(20) }));
  for (const [sideBand, max] of [['side-band-64k', 65520], ['side-band', 1000]] as const) {
    const buf = buildReceivePackResult({ unpackOk: true, refs, sideBand, progress: ['Airlock: push held for review #1\n', 'x'.repeat(3000)] });
    const { band1, band2 } = demux(buf, max);
    assert.ok(band2.startsWith('Airlock: push held for review #1\n'));
    assert.equal(band2.length, 33 + 3001);
    const lines = reportLines(band1);
    assert.equal(lines.length, 402);
    assert.equal(lines[0], 'unpack ok\n');
    assert.equal(lines[400], `ng refs/heads/branch-399 ${'held '.repeat(20).trim()}\n`);
  }
});

test('sideBandProgress makes one band-2 packet', () => {
  const p = sideBandProgress('Airlock: still waiting for review #3', 'side-band-64k');
  assert.equal(p.toString('latin1'), `${(4 + 1 + 37).toString(16).padStart(4, '0')}\x02Airlock: still waiting for review #3\n`);
  assert.equal(sideBandProgress('x', null).length, 0);
  const long = sideBandProgress('é'.repeat(2000), 'side-band');
  assert.ok(long.length <= 1000);
  assert.ok(long.subarray(5).toString('utf8').endsWith('é\n'));
});

test('parseReceivePackResult reads what upstream did with each ref, with and without side-band; describeReport says it in one line', () => {
  const refs = [{ ref: 'refs/heads/main', ok: true as const }, { ref: 'refs/heads/dev', ok: false as const, reason: 'failed to update ref' }];
  for (const sideBand of ['side-band-64k', 'side-band', null] as const) {
    const wire = buildReceivePackResult({ unpackOk: true, refs, sideBand, progress: ['Resolving deltas: 100%'] });
    const r = parseReceivePackResult(wire, sideBand);
    assert.deepEqual(r, { unpack: 'ok', refs }, String(sideBand));
    assert.equal(describeReport(r!), 'upstream rejected refs/heads/dev: failed to update ref');
  }
  const ok = parseReceivePackResult(buildReceivePackResult({ unpackOk: true, refs: [refs[0]!], sideBand: 'side-band-64k' }), 'side-band-64k');
  assert.equal(describeReport(ok!), 'ok');
  const unpackFailed = parseReceivePackResult(buildReceivePackResult({ unpackOk: 'index-pack abnormal exit', refs: [], sideBand: null }), null);
  assert.equal(describeReport(unpackFailed!), 'upstream rejected unpack failed (index-pack abnormal exit)');
  // Band 3: a fatal error instead of a report.
  const fatal = Buffer.concat([encodePkt(Buffer.concat([Buffer.from([3]), Buffer.from('fatal: the remote end hung up\n')])), Buffer.from('0000')]);
  assert.deepEqual(parseReceivePackResult(fatal, 'side-band-64k'), { unpack: 'fatal: the remote end hung up', refs: [] });
  // No report (a push without report-status), or not pkt-lines at all: not known.
  assert.equal(parseReceivePackResult(Buffer.from('0000'), 'side-band-64k'), null);
  assert.equal(parseReceivePackResult(Buffer.from('<html>oops</html>'), null), null);
});

test('sanitizeReason turns C1 controls, line separators and bidirectional characters into spaces', () => {
  assert.equal(sanitizeReason('a\u009b31mred\u2028To https://x main -> main\u202eb\u0085c'), 'a 31mred To https://x main -> main b c');
});
