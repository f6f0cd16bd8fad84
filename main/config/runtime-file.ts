// The runtime file a running gateway writes into its data dir (its pid and URLs), and how other
// processes find that gateway: the CLI to talk to it, a second gateway to refuse to start beside it.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { DataPaths } from './paths';

export interface RuntimeInfo {
  pid: number;
  proxyUrl: string;
  consoleUrl: string | null;
  startedAt?: string;
}

/** The runtime file's contents, or null when there is none (or it cannot be read as one). */
export function readRuntime(paths: DataPaths): RuntimeInfo | null {
  try {
    const info = JSON.parse(readFileSync(paths.runtime, 'utf8')) as RuntimeInfo;
    return Number.isInteger(info.pid) && typeof info.proxyUrl === 'string' ? info : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists (one we may not signal counts as existing). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port (bounded by timeoutMs). */
function listening(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Another gateway running on this data dir: its runtime file names a live process other than this
 * one, and that process's proxy port accepts connections (so a file left by a killed gateway, whose
 * pid may since belong to something else, does not count).
 */
export async function otherGateway(paths: DataPaths): Promise<RuntimeInfo | null> {
  const info = readRuntime(paths);
  if (!info || info.pid === process.pid || !pidAlive(info.pid)) return null;
  return (await proxyListening(info)) ? info : null;
}

/**
 * Whether the proxy port a runtime file names accepts connections: a live pid alone is not enough,
 * since a killed gateway's pid may since belong to another process (Windows reuses pids soon).
 */
export async function proxyListening(info: RuntimeInfo): Promise<boolean> {
  let port: number;
  try {
    port = Number(new URL(info.proxyUrl).port);
  } catch {
    return false;
  }
  return port > 0 && (await listening(port));
}
