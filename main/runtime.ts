// Process-wide settings for a long-running gateway process (`airlock serve`, the desktop app).
// Not applied by the library (tests and embedders keep their own V8 settings).
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How often idleness is checked. */
const TICK_MS = 250;
/** The process counts as idle after this long below IDLE_CPU_SHARE of one core... */
const IDLE_AFTER_MS = 2000;
const IDLE_CPU_SHARE = 0.02;
/** ...and as busy (worth a reclaim when it next goes idle) after a tick above BUSY_CPU_SHARE. */
const BUSY_CPU_SHARE = 0.2;

export interface GatewayRuntime {
  /** Full collections run so far because the process went idle after a burst. */
  readonly idleReclaims: number;
  stop(): void;
}

/**
 * V8's full collection without `--expose-gc` on the command line: the flag makes `gc` a global of
 * contexts created while it is on, and is switched off again at once.
 */
export function fullCollector(): (() => void) | undefined {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  v8.setFlagsFromString('--no-expose-gc');
  return gc;
}

/**
 * Two memory settings for a proxy that allocates a few KiB per request and keeps almost none:
 *
 * - **Nursery**: V8's young generation stays at its starting size (1 MiB semi-spaces) instead of
 *   growing to 16 MiB ×2 under load: a small nursery is scavenged often and cheaply, and the process
 *   stays ~15–30 MB smaller after a burst. V8 reads the growth-factor flag each time it would grow the
 *   new space, so setting it at start-up is enough (`--max-semi-space-size` would need a command-line
 *   flag). Letting it grow to 4 MiB saved no CPU measurably in A/B runs (docs/decisions.md).
 * - **Idle reclaim**: after a burst, once the process has been idle for IDLE_AFTER_MS, one full
 *   collection runs, so the old generation's dead pages are released and memory returns towards its
 *   resting size between bursts instead of staying at the burst's level until V8 happens to collect
 *   (`fullCollector`).
 */
export function tuneForGateway(): GatewayRuntime {
  v8.setFlagsFromString('--semi-space-growth-factor=1');

  const gc = fullCollector();

  let idleReclaims = 0;
  let last = process.cpuUsage();
  let idleMs = 0;
  let busySinceReclaim = false;
  const timer = setInterval(() => {
    const now = process.cpuUsage();
    const share = (now.user - last.user + now.system - last.system) / 1000 / TICK_MS;
    last = now;
    if (share > BUSY_CPU_SHARE) {
      busySinceReclaim = true;
      idleMs = 0;
    } else if (share < IDLE_CPU_SHARE) {
      idleMs += TICK_MS;
      if (busySinceReclaim && idleMs >= IDLE_AFTER_MS && gc) {
        busySinceReclaim = false;
        gc();
        idleReclaims++;
        last = process.cpuUsage(); // the collection itself is not activity
      }
    } else idleMs = 0;
  }, TICK_MS);
  timer.unref();

  return {
    get idleReclaims() {
      return idleReclaims;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
