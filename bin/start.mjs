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
  // As `airlock run` does (main/env/run-agent.ts, signalPlan): Ctrl-C in a terminal already reaches
  // the child, so it is not sent twice; on Windows the console signals every process and kill() would
  // end the child without its clean stop, so nothing is passed on. This process waits for the child.
  const win = process.platform === 'win32';
  const forward = win ? [] : process.stdin.isTTY ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of win ? ['SIGINT', 'SIGBREAK', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => { if (forward.includes(sig)) child.kill(sig); });
  }
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

/** `npm run build`: through the npm that runs `npm start` (npm_execpath), as Windows cannot spawn npm.cmd without a shell. */
function buildFirst(then) {
  const npmCli = process.env.npm_execpath;
  const b = npmCli
    ? spawn(process.execPath, [npmCli, 'run', 'build'], { stdio: ['ignore', 2, 2], cwd: root })
    : spawn('npm', ['run', 'build'], { stdio: ['ignore', 2, 2], cwd: root, shell: process.platform === 'win32' });
  b.on('exit', (code) => (code === 0 ? then() : process.exit(code ?? 1)));
}

const electron = electronBinary();
if (electron && !process.env.AIRLOCK_HEADLESS) {
  if (!existsSync(join(root, 'out', 'main', 'index.js'))) {
    console.error('Building the desktop app first (npm run build)...');
    buildFirst(() => run(electron, ['.', ...extra]));
  } else run(electron, ['.', ...extra]);
} else {
  console.error(electron ? 'AIRLOCK_HEADLESS is set: starting the headless gateway and web console.'
    : 'Electron binary not installed (installed with ELECTRON_SKIP_BINARY_DOWNLOAD?): starting the headless gateway and web console instead.');
  const serve = () => run(process.execPath, [join(root, 'bin', 'airlock.mjs'), 'serve', ...extra]);
  // The web console is the renderer's build: a fresh checkout has none yet.
  if (!existsSync(join(root, 'out', 'renderer', 'index.html'))) {
    console.error('Building the web console first (npm run build)...');
    buildFirst(serve);
  } else serve();
}
