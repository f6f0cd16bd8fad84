// Temp directories and free ports for tests. Everything lives under os.tmpdir().
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

/** Creates a fresh directory `<os.tmpdir()>/<prefix>XXXXXX`. */
export async function makeTempDir(prefix = 'airlock-test-'): Promise<string> {
  const safe = prefix.replace(/[^A-Za-z0-9._-]/g, '-');
  return mkdtemp(join(tmpdir(), safe.endsWith('-') ? safe : `${safe}-`));
}

/** Removes a directory recursively; never throws (retries briefly on EBUSY/ENOTEMPTY). */
export async function removeDir(dir: string | undefined | null): Promise<void> {
  if (!dir) return;
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
  } catch {
    /* best effort */
  }
}

/** A port that was free on 127.0.0.1 a moment ago (the OS may hand it out again; prefer port 0 where possible). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
