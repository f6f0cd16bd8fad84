// Where the built pieces live, relative to the main bundle (out/main/index.js).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));

export const RENDERER_INDEX = join(here, '..', 'renderer', 'index.html');
export const RENDERER_URL = pathToFileURL(RENDERER_INDEX).href;
export const PRELOAD_PATH = join(here, '..', 'preload', 'index.cjs');
/** The core service, built as a sibling entry of the main bundle (see electron.vite.config.ts). */
export const SERVICE_MODULE_URL = new URL('./service.js', import.meta.url).href;
