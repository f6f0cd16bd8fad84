// Shared helpers for store tests: a fresh store in a temp dir, and a controllable clock.
import { after } from 'node:test';
import { join } from 'node:path';
import { makeTempDir, removeDir } from '../helpers/tmp';
import { openStore } from '../../main/store';
import type { ExchangeRecord, Store } from '../../main/store';

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

/** For a test file: `fresh()` makes a new temp dir each call; every one is removed after the file's tests. */
export function tempDirs(prefix: string): () => Promise<string> {
  const made: string[] = [];
  after(async () => {
    for (const d of made) await removeDir(d);
  });
  return async () => {
    const d = await makeTempDir(prefix);
    made.push(d);
    return d;
  };
}

/** A complete exchange record for store tests; `over` replaces fields. */
export function exchange(id: string, over: Partial<ExchangeRecord> = {}): ExchangeRecord {
  return {
    id,
    sessionId: 's1',
    agent: 'alice',
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:01.000Z',
    method: 'POST',
    scheme: 'https',
    host: 'github.com',
    port: 443,
    path: '/o/r.git/git-receive-pack',
    kind: 'git-push',
    verdict: 'review',
    ruleId: 'push-needs-review',
    explanation: 'Pushes are reviewed.',
    status: 200,
    error: null,
    requestBytes: 10,
    responseBytes: 20,
    timings: { connectMs: 1, tlsMs: 2, upstreamMs: 3, totalMs: 4.5 },
    requestHeaders: { host: 'github.com', 'content-type': 'application/x-git-receive-pack-request' },
    responseHeaders: { 'content-type': 'application/x-git-receive-pack-result' },
    requestBody: Buffer.from('request body'),
    responseBody: Buffer.from('response body'),
    requestBodyComplete: true,
    responseBodyComplete: true,
    requestBodySha256: null,
    responseBodySha256: null,
    reviewId: null,
    ...over,
  };
}
