#!/usr/bin/env node
// `npm start`: the desktop app when the Electron binary is installed; otherwise
// one line saying so, then the headless gateway with its web console, so the
// main job (holding agents' pushes for review) always runs.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const extra = process.argv.slice(2);

function electronBinary() {
  try {
    const p = require('electron'); // the package exports the binary's path, and throws when it was not downloaded
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

function run(cmd, args) {
  const child = spawn(cmd, args, { stdio: 'inherit', cwd: root });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

const electron = electronBinary();
if (electron && !process.env.AIRLOCK_HEADLESS) {
  if (!existsSync(join(root, 'out', 'main', 'index.js'))) {
    console.error('Building the desktop app first (npm run build)...');
    const b = spawn(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { stdio: 'inherit', cwd: root });
    b.on('exit', (code) => (code === 0 ? run(electron, ['.', ...extra]) : process.exit(code ?? 1)));
  } else run(electron, ['.', ...extra]);
} else {
  console.error(electron ? 'AIRLOCK_HEADLESS is set: starting the headless gateway and web console.'
    : 'Electron binary not installed (installed with ELECTRON_SKIP_BINARY_DOWNLOAD?): starting the headless gateway and web console instead.');
  run(process.execPath, [join(root, 'bin', 'airlock.mjs'), 'serve', ...extra]);
}
