// Launches the built desktop app with the real Electron binary when it is
// installed; this machine has only the npm package (ELECTRON_SKIP_BINARY_DOWNLOAD),
// so the test then skips and says so.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeTempDir, removeDir } from '../helpers/tmp';

const ROOT = resolve(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);

function electronBinary(): string | null {
  try {
    const p = require('electron') as unknown;
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null; // the package throws when its binary was never downloaded
  }
}

let dataDir: string | undefined;
after(async () => {
  await removeDir(dataDir);
});

test('desktop window is isolated, sandboxed and has no Node', { timeout: 120_000 }, async (t) => {
  const bin = electronBinary();
  if (!bin) {
    t.skip('Electron binary not installed (ELECTRON_SKIP_BINARY_DOWNLOAD); desktop shell not launched');
    return;
  }
  if (!existsSync(join(ROOT, 'out', 'main', 'index.js'))) {
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], { cwd: ROOT, stdio: 'inherit', timeout: 180_000 });
    assert.equal(r.status, 0);
  }
  dataDir = await makeTempDir('airlock-desktop-');
  const { _electron } = await import('playwright-core');
  const app = await _electron.launch({
    executablePath: bin,
    args: [join(ROOT, 'out', 'main', 'index.js'), '--no-sandbox'],
    cwd: ROOT,
    env: { ...process.env, AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PROXY_PORT: '0' } as Record<string, string>,
    timeout: 60_000,
  });
  try {
    const win = await app.firstWindow();
    await win.waitForLoadState('domcontentloaded');
    const prefs = await app.evaluate(({ BrowserWindow }) => {
      const wc = BrowserWindow.getAllWindows()[0]!.webContents as unknown as { getLastWebPreferences?: () => Record<string, unknown> };
      const p = wc.getLastWebPreferences?.();
      return p ? { contextIsolation: p.contextIsolation, sandbox: p.sandbox, nodeIntegration: p.nodeIntegration, webSecurity: p.webSecurity } : null;
    });
    if (prefs) assert.deepEqual(prefs, { contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true });
    // Behavioural checks, valid whatever the Electron version exposes: contextBridge only
    // works with contextIsolation (and freezes what it exposes); sandbox + no nodeIntegration
    // leave no require/process in the page.
    assert.equal(await win.evaluate(() => Object.isFrozen((window as unknown as { airlock: object }).airlock)), true);
    const page = await win.evaluate(() => ({
      bridge: Object.keys((window as unknown as { airlock: object }).airlock).sort(),
      require: typeof (window as unknown as { require?: unknown }).require,
      process: typeof (window as unknown as { process?: unknown }).process,
    }));
    assert.deepEqual(page, { bridge: ['invoke', 'onEvent'], require: 'undefined', process: 'undefined' });
    const opened = await win.evaluate(() => window.open('https://example.com/') === null);
    assert.equal(opened, true, 'window.open is denied');
  } finally {
    await app.close();
  }
});
