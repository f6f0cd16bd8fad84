// Push with real git, capture the body, analyse it against a snapshot of upstream taken before the push.
import { writeFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { parseReceivePackRequest, analysePush, cleanupQuarantine, type AnalysisLimits, type ReceivePackRequest } from '../../main/git/index';
import type { RefUpdateView } from '../../main/contract/views';
import { Scenario, tempDir } from './scenario';

export const timings: Array<{ name: string; ms: number; packBytes: number; indexPackMs: number; analysisMs: number }> = [];

export async function pushAndAnalyse(s: Scenario, pushArgs: string[], opts: { limits?: AnalysisLimits; name?: string } = {}):
Promise<{ refs: RefUpdateView[]; req: ReceivePackRequest; body: Buffer; cache: string; ms: number }> {
  const cache = await s.snapshot();
  const r = await s.push(pushArgs);
  assert.equal(r.code, 0, r.stderr);
  const body = r.posts[r.posts.length - 1].body;
  const req = parseReceivePackRequest(body);
  let packFile: string | null = null;
  if (req.hasPack) {
    packFile = join(await tempDir('pack'), 'push.pack');
    await writeFile(packFile, body.subarray(req.packOffset));
  }
  const t0 = performance.now();
  const a = await analysePush({ cacheDir: cache, packFile, commands: req.commands, limits: opts.limits });
  const ms = performance.now() - t0;
  timings.push({ name: opts.name ?? pushArgs.join(' '), ms, packBytes: body.length - req.packOffset, ...a.timings });
  await cleanupQuarantine(a.quarantineDir);
  if (packFile) await rm(dirname(packFile), { recursive: true, force: true });
  await rm(dirname(cache), { recursive: true, force: true });
  return { refs: a.refs, req, body, cache, ms };
}
