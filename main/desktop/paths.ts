// Where the built pieces live, relative to the main bundle (out/main/index.js).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { defaultDataDir } from '../config/paths';

const here = fileURLToPath(new URL('.', import.meta.url));

export const RENDERER_INDEX = join(here, '..', 'renderer', 'index.html');
export const RENDERER_URL = pathToFileURL(RENDERER_INDEX).href;
export const PRELOAD_PATH = join(here, '..', 'preload', 'index.cjs');
/** The core service, built as a sibling entry of the main bundle (see electron.vite.config.ts). */
export const SERVICE_MODULE_URL = new URL('./service.js', import.meta.url).href;

/**
 * The desktop app's data dir is the CLI's (`AIRLOCK_DATA_DIR`, else the platform's default), so that
 * `airlock status`, `approve` and `audit verify` in a terminal see the gateway the app runs. Electron's
 * own profile (caches, local storage, the single-instance lock) goes into a folder of its own inside
 * it: on Linux Electron's default would be that very directory, on macOS and Windows a case variant
 * of it (`airlock` for `Airlock`), the same folder on their case-insensitive file systems.
 */
export function desktopDirs(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): { dataDir: string; profileDir: string } {
  const dataDir = defaultDataDir(env, platform);
  return { dataDir, profileDir: join(dataDir, 'desktop-profile') };
}
