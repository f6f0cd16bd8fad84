// The real UI in real Chromium (Debian's /usr/bin/chromium, or CHROMIUM_PATH): the built renderer
// (built here if it is missing) and a browser launched with the flags that work as root on CI.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT } from './airlock';

/** Where electron-vite puts the renderer (what the console serves as its static files). */
export const RENDERER_DIR = join(REPO_ROOT, 'out', 'renderer');

/** Runs `electron-vite build` unless `marker` (default: the renderer's index.html) exists. */
export function ensureBuilt(marker = join(RENDERER_DIR, 'index.html')): void {
  if (existsSync(marker)) return;
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'],
    { cwd: REPO_ROOT, stdio: 'inherit', timeout: 180_000 });
  assert.equal(r.status, 0, 'electron-vite build failed');
}

/** Headless Chromium, never downloaded: the system's binary. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}
