// Issue 4's measurement: time from a held push being received to its review
// being ready, for (a) the first push to an unseen ~100 MB repository (Airlock
// has no cache yet: it fetches the upstream repo, indexes the thin pack, diffs)
// and (b) a later push to the same repository (cache reused).
// Run: node --import tsx bench/push-review.ts [--mb 100]
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, gitEnvIsolated, makeTempDir, removeDir, runGit, startGitServer } from '../test/helpers/index';
import { startAirlock } from '../main/service';
import { createLogger } from '../main/log';
import { hashToken, newAgentToken } from '../main/agents/tokens';

const mbArg = process.argv.indexOf('--mb');
const MB = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 100;

async function must(p: ReturnType<typeof runGit>, what: string) {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.slice(-500)}`);
  return r;
}

const pki = await createTestPki();
const server = await startGitServer({ pki, auth: { username: 'alice', password: 'bench-secret' } });
const home = await makeTempDir('airlock-bench-push');
const env = gitEnvIsolated(home);
const repo = await server.createRepo('big', { seed: false });

// Build a ~MB MiB repository of incompressible files directly on the server side.
const seed = join(home, 'seed');
await must(runGit(['init', '-q', '-b', 'main', seed], { env }), 'init');
mkdirSync(join(seed, 'data'));
for (let i = 0; i < MB; i++) writeFileSync(join(seed, 'data', `blob-${i}.bin`), randomBytes(1024 * 1024));
writeFileSync(join(seed, 'README.md'), '# big\n');
await must(runGit(['add', '.'], { cwd: seed, env }), 'add');
await must(runGit(['commit', '-q', '-m', 'seed'], { cwd: seed, env }), 'commit');
await must(runGit(['-c', 'http.sslCAInfo=' + pki.caPath, 'push', '-q', repo.authUrl, 'main'], { cwd: seed, env: { ...env, GIT_HTTP_MAX_REQUEST_BUFFER: '1g' } }), 'seed push');
process.stderr.write(`seeded a ${MB} MiB repository\n`);

const dataDir = await makeTempDir('airlock-bench-push-data');
const timings: Array<{ reviewId: string; msFromReceipt: number; analysisMs: number; cacheMs: number }> = [];
const a = await startAirlock({ dataDir, proxyPort: 0, consolePort: null, upstreamCa: [pki.caPath], log: createLogger('error'), onReviewReady: (t) => timings.push(t) });
const token = newAgentToken();
a.service.store.agents.add('bench', ['ai-coding']);
a.service.store.agents.addToken('bench', hashToken(token), 'bench', null);
await a.service.credentials.set(new URL(server.url).host, 'bench-secret', { username: 'alice' });
const agentEnv = { ...env, HTTPS_PROXY: `http://bench:${token}@127.0.0.1:${new URL(a.proxyUrl).port}`, GIT_SSL_CAINFO: a.caPath };

// The agent's clone goes directly (the measurement is about the push, not the clone).
const work = join(home, 'work');
await must(runGit(['-c', 'http.sslCAInfo=' + pki.caPath, 'clone', '-q', repo.authUrl, work], { env }), 'clone');

async function heldPush(label: string, i: number) {
  writeFileSync(join(work, `change-${i}.txt`), `change ${i}\n`.repeat(100));
  await must(runGit(['add', '.'], { cwd: work, env }), 'add');
  await must(runGit(['commit', '-q', '-m', `change ${i}`], { cwd: work, env }), 'commit');
  const before = timings.length;
  const push = runGit(['push', repo.url, 'main'], { cwd: work, env: agentEnv, timeoutMs: 600_000 });
  for (let n = 0; n < 6000 && timings.length === before; n++) await new Promise((r) => setTimeout(r, 50));
  const t = timings[timings.length - 1];
  if (!t || timings.length === before) throw new Error('no review became ready');
  await a.service.approveReview({ id: t.reviewId });
  await must(push, 'held push');
  process.stderr.write(`${label}: review ready ${t.msFromReceipt} ms after receipt (cache ${t.cacheMs} ms, analysis ${t.analysisMs} ms)\n`);
  return { label, ...t };
}

const first = await heldPush(`first push to an unseen ${MB} MiB repository`, 1);
await new Promise((r) => setTimeout(r, 3000)); // the background cache refresh after the first approval
const later = await heldPush('later push to the same repository', 2);
console.log(JSON.stringify({ repoMiB: MB, first, later }, null, 2));
await a.service.close();
await server.close();
await removeDir(home);
await removeDir(dataDir);
