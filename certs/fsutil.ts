import { chmodSync, linkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

/** Writes `data` to a temp file beside `path` (mode enforced by chmod), then `place`s it; the temp file never stays. */
function viaTemp(path: string, data: string, mode: number, place: (tmp: string) => void): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    chmodSync(tmp, mode);
    place(tmp);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Writes `data` to `path` through a temp file + rename, with `mode` enforced by chmod. */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  viaTemp(path, data, mode, (tmp) => renameSync(tmp, path));
}

/**
 * Creates `path` with `data` unless it exists, whole or not at all (a hard link of a complete temp
 * file): of processes that create it at the same moment, one wins and the others read its content.
 * Returns whether this call created it. `link` is for tests only (a file system without hard links).
 */
export function createFileOnce(path: string, data: string, mode: number, link: (from: string, to: string) => void = linkSync): boolean {
  let created = false;
  viaTemp(path, data, mode, (tmp) => {
    try {
      try {
        link(tmp, path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A file system without hard links (exFAT, some network shares): an exclusive create instead,
        // still created once, though a reader at that very moment could see it before it is complete.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw e;
        writeFileSync(path, data, { mode, flag: 'wx' });
        chmodSync(path, mode);
      }
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  });
  return created;
}
