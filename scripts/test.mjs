// Runs every test/**/*.test.ts with Node's own test runner (tsx as loader).
// Node 20 cannot expand globs in `--test`, so the file list is built here; the
// same command works unchanged on Node 22 and 24.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filter = process.argv.slice(2);
const files = walk('test').filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)));
if (files.length === 0) { console.error('no test files matched'); process.exit(1); }
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2',
  '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
