#!/usr/bin/env node
// The `airlock` command. Runs the bundle made by `npm run build` (out/cli/cli.mjs)
// when it is newer than every source file, otherwise the TypeScript sources
// through tsx, so a checkout works with or without a build.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'out', 'cli', 'cli.mjs');

function newestSource(dir, newest = 0) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = newestSource(p, newest);
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  if (process.env.AIRLOCK_FROM_SOURCE) return false;
  try {
    const built = statSync(bundle).mtimeMs;
    return built >= newestSource(join(root, 'main')) && built >= newestSource(join(root, 'certs'));
  } catch {
    return false;
  }
}

let main;
if (bundleIsFresh()) {
  ({ main } = await import(pathToFileURL(bundle).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../main/cli.ts'));
}
process.exitCode = await main(process.argv.slice(2));
