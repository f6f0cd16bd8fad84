// Our report-status, as answered to a real `git push`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildReceivePackResult, parseReceivePackRequest, RECEIVE_PACK_RESULT_CONTENT_TYPE, type SideBand } from '../../main/git/index';
import { Scenario } from './scenario';

let s: Scenario;
before(async () => {
  s = await Scenario.create();
  await s.commit('Secret stuff', { 'secrets.env': 'TOKEN=x\n' });
});
after(async () => { await s?.close(); });

function answerWith(ok: boolean, seen: SideBand[]): void {
  s.server.respond = (post) => {
    const req = parseReceivePackRequest(post.body);
    if (req.isProbe) return null;
    seen.push(req.sideBand);
    return {
      contentType: RECEIVE_PACK_RESULT_CONTENT_TYPE,
      body: buildReceivePackResult({
        unpackOk: true,
        refs: req.commands.map((c) => (ok ? { ref: c.ref, ok: true as const } : { ref: c.ref, ok: false as const, reason: 'denied by alice:\nno secrets' })),
        sideBand: req.sideBand,
        progress: ['Airlock: push held for review #1\n', 'Airlock: decision received\n'],
      }),
    };
  };
}

for (const [label, strip, expectBand] of [
  ['side-band-64k', [], 'side-band-64k'],
  // git's send-pack only ever asks for side-band-64k: without it there is no multiplexing at all
  // (the 1000-byte 'side-band' framing is covered by report-status.test.ts).
  ['no side-band-64k advertised', ['side-band-64k'], null],
] as const) {
  test(`git accepts our rejection (${label})`, async () => {
    const seen: SideBand[] = [];
    answerWith(false, seen);
    s.server.stripCaps = [...strip];
    const r = await s.push(['origin', 'main']);
    assert.deepEqual(seen, [expectBand]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /! \[remote rejected\] main -> main \(denied by alice: no secrets\)/);
    if (expectBand) {
      assert.match(r.stderr, /^remote: Airlock: push held for review #1\s*$/m);
      assert.match(r.stderr, /^remote: Airlock: decision received\s*$/m);
    } else {
      assert.doesNotMatch(r.stderr, /remote:/);
    }
  });
}

test('git accepts our success report', async () => {
  const seen: SideBand[] = [];
  answerWith(true, seen);
  s.server.stripCaps = [];
  const r = await s.push(['origin', 'main']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /remote: Airlock: push held for review #1/);
  assert.match(r.stderr, / {3}[0-9a-f]+\.\.[0-9a-f]+ {2}main -> main/);
});
