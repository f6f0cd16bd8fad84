// Runs the suite again on the other Node lines users run (22 and 24 by default), with the
// same node_modules: the official Node binaries come from the npm registry (the packages
// node-<platform>-<arch>, repackaged nodejs.org tarballs; npm checks their integrity) and
// are cached in ~/.cache/airlock/node. Each line runs `scripts/test.mjs` with its `node`
// first on PATH, so every child process the tests start runs on it too.
//
//   node scripts/test-nodes.mjs [--majors 22,24] [test-file filters...]
//
// AIRLOCK_TEST_NODES=22,24 (the default) sets the lines; AIRLOCK_TEST_NODES=none runs none
// (said so in the output), for a quick local `npm test`.
//
// A line that cannot be had (no network and nothing cached, an unsupported platform) is
// reported as not run, with the reason; a line whose suite fails makes this exit 1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const args = process.argv.slice(2);
const fromEnv = process.env.AIRLOCK_TEST_NODES;
let majors = fromEnv === undefined || fromEnv === '' ? ['22', '24'] : fromEnv === 'none' ? [] : fromEnv.split(',').map((s) => s.trim()).filter(Boolean);
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--majors') majors = String(args[++i] ?? '').split(',').filter(Boolean);
  else filters.push(args[i]);
}
const current = process.versions.node.split('.')[0];
const cacheRoot = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'airlock', 'node');
const platform = { linux: 'linux', darwin: 'darwin' }[process.platform];
const pkg = platform && ['x64', 'arm64'].includes(process.arch) ? `node-${platform}-${process.arch}` : null;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const log = (m) => console.log(`[test-nodes] ${m}`);

const cmp = (a, b) => {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
};

function cached(major) {
  if (!existsSync(cacheRoot)) return [];
  return readdirSync(cacheRoot)
    .filter((v) => v.split('.')[0] === major && existsSync(join(cacheRoot, v, 'bin', 'node')))
    .sort(cmp);
}

/** The newest release of this line: from the registry, else the newest cached one. */
function resolve(major) {
  const r = spawnSync(npm, ['view', `${pkg}@${major}`, 'version', '--json'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) {
    try {
      const v = JSON.parse(r.stdout);
      const list = (Array.isArray(v) ? v : [v]).filter((s) => typeof s === 'string').sort(cmp);
      if (list.length) return { version: list[list.length - 1] };
    } catch { /* fall through */ }
  }
  const have = cached(major);
  if (have.length) return { version: have[have.length - 1], note: 'registry not reachable, using the cached copy' };
  return { error: `the npm registry did not answer for ${pkg}@${major} and none is cached in ${cacheRoot}` };
}

function fetchNode(version) {
  const dir = join(cacheRoot, version);
  if (existsSync(join(dir, 'bin', 'node'))) return { dir };
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'airlock-node-'));
  try {
    log(`downloading ${pkg}@${version} from the npm registry`);
    const p = spawnSync(npm, ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--silent'], { encoding: 'utf8', timeout: 600_000 });
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (p.status !== 0 || !tgz) return { error: `npm pack ${pkg}@${version} failed: ${(p.stderr || '').trim().split('\n').pop()}` };
    const out = join(tmp, 'x');
    mkdirSync(out);
    const t = spawnSync('tar', ['xzf', join(tmp, tgz), '-C', out, '--strip-components=1'], { encoding: 'utf8' });
    if (t.status !== 0 || !existsSync(join(out, 'bin', 'node'))) return { error: `could not unpack ${tgz}: ${t.stderr}` };
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
    return { dir };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const results = [];
if (majors.length === 0) log('AIRLOCK_TEST_NODES=none: the suite ran on this Node only (' + process.versions.node + ')');
for (const major of majors) {
  if (major === current) {
    results.push([major, 'not run', `this is the Node line running npm test (${process.versions.node})`]);
    continue;
  }
  if (!pkg) {
    results.push([major, 'not run', `no Node package on the npm registry for ${process.platform}-${process.arch}`]);
    continue;
  }
  const v = resolve(major);
  if (v.error) { results.push([major, 'not run', v.error]); continue; }
  if (v.note) log(`Node ${major}: ${v.note}`);
  const f = fetchNode(v.version);
  if (f.error) { results.push([major, 'not run', f.error]); continue; }
  const bin = join(f.dir, 'bin');
  log(`Node ${v.version}: running the suite`);
  const started = Date.now();
  const r = spawnSync(join(bin, 'node'), ['scripts/test.mjs', ...filters], {
    stdio: 'inherit',
    env: { ...process.env, PATH: bin + delimiter + (process.env.PATH ?? '') },
  });
  const secs = Math.round((Date.now() - started) / 1000);
  results.push([v.version, r.status === 0 ? 'pass' : 'FAIL', `${secs} s${r.status === 0 ? '' : `, exit ${r.status ?? r.signal}`}`]);
}

console.log('');
for (const [v, status, why] of results) log(`Node ${v}: ${status} (${why})`);
process.exit(results.some((r) => r[1] === 'FAIL') ? 1 : 0);
