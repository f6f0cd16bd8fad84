// tuneForGateway changes process-wide V8 flags, so it runs in a child process of its own here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const runtime = fileURLToPath(new URL('../../main/runtime.ts', import.meta.url));

// A burst that leaves a few MB of dead objects in the old generation, then idleness. Every wait is bounded.
const CHILD = `
const { tuneForGateway } = await import(${JSON.stringify(runtime)});
const rt = tuneForGateway();
const used = () => process.memoryUsage().heapUsed;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(600); // idle from the start: nothing to reclaim yet
const before = rt.idleReclaims;
let keep = [];
const end = Date.now() + 1200;
while (Date.now() < end) {
  for (let i = 0; i < 2000; i++) keep.push({ a: 'x' + i, b: [i, i + 1] });
  if (keep.length > 200000) keep = keep.slice(100000);
}
keep = null;
const afterBurst = used();
let waited = 0;
while (rt.idleReclaims === before && waited < 8000) { await sleep(100); waited += 100; }
const afterIdle = used();
await sleep(3000); // idle again without a burst in between: no second collection
console.log(JSON.stringify({ before, reclaims: rt.idleReclaims, waited, afterBurst, afterIdle }));
rt.stop();
`;

test('after a burst, the gateway runtime runs one full collection once the process has been idle for 2 s, and none without a new burst', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { timeout: 30_000 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { before: number; reclaims: number; waited: number; afterBurst: number; afterIdle: number };
  assert.equal(r.before, 0, 'no collection while idle before any burst');
  assert.equal(r.reclaims, 1, `exactly one idle reclaim (waited ${r.waited} ms)`);
  assert.ok(r.waited >= 1500, `not before ~2 s of idleness (came after ${r.waited} ms)`);
  assert.ok(r.afterIdle < r.afterBurst / 2, `the burst's garbage is gone: heap used ${r.afterBurst} -> ${r.afterIdle} bytes`);
});
