// Shared helpers for store tests: a fresh store in a temp dir, and a controllable clock.
import { after } from 'node:test';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { openStore } from '../../main/store';
import type { Store } from '../../main/store';

export interface Clock {
  now: () => Date;
  set(iso: string): void;
  advance(ms: number): void;
}

export function makeClock(start = '2026-01-01T00:00:00.000Z'): Clock {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    set(iso) {
      t = Date.parse(iso);
    },
    advance(ms) {
      t += ms;
    },
  };
}

export interface TempStore {
  dir: string;
  file: string;
  store: Store;
  clock: Clock;
  cleanup(): Promise<void>;
}

export async function tempStore(prefix = 'airlock-store-'): Promise<TempStore> {
  const dir = await makeTempDir(prefix);
  const file = join(dir, 'airlock.db');
  const clock = makeClock();
  const store = openStore(file, { now: clock.now });
  return {
    dir,
    file,
    store,
    clock,
    async cleanup() {
      try {
        store.close();
      } catch {
        /* already closed */
      }
      await removeDir(dir);
    },
  };
}

/**
 * For a test file: `fresh()` opens a new temp store each call; every one is
 * closed and removed after the file's tests.
 */
export function tempStores(prefix: string): () => Promise<TempStore> {
  const open: TempStore[] = [];
  after(async () => {
    for (const t of open) await t.cleanup();
  });
  return async () => {
    const t = await tempStore(prefix);
    open.push(t);
    return t;
  };
}
