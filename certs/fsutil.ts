import { chmodSync, linkSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CaError, errnoOf } from './errors';

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
  viaTemp(path, data, mode, (tmp) => renameRetrying(tmp, path, renameSync));
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Windows refuses to replace a file another program has open (git or curl reading the bundle, an
 * antivirus scanner): EPERM, EACCES or EBUSY for a moment. Tried again for up to ~1.5 s, as
 * graceful-fs does; anywhere else the first error is final.
 */
export function renameRetrying(from: string, to: string, rename: (from: string, to: string) => void, platform: NodeJS.Platform = process.platform): void {
  for (let wait = 10; ; wait *= 2) {
    try {
      rename(from, to);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (platform !== 'win32' || wait > 800 || (code !== 'EPERM' && code !== 'EACCES' && code !== 'EBUSY')) throw e;
      Atomics.wait(sleeper, 0, 0, wait);
    }
  }
}

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'ENOSYS', 'EISDIR', 'EINVAL', 'EXDEV']);

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
        // A file system without hard links (exFAT, FAT, some network shares): an exclusive create
        // instead, still created once, though a reader at that very moment could see it before it is
        // complete. Windows reports a failed link on exFAT as EISDIR (nodejs/node#65817).
        if (!NO_HARD_LINKS.has(code ?? '')) throw e;
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

function ownerName(uid: number): string {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid));
    const name = line?.split(':')[0];
    if (name) return `uid ${uid} (${name})`;
  } catch {
    // no passwd file: the number alone
  }
  return `uid ${uid}`;
}

/** This process's uid, or null where files have no Unix owner (Windows). */
function myUid(): number | null {
  return process.platform === 'win32' || typeof process.getuid !== 'function' ? null : process.getuid();
}

/** The file's stat, or null when it cannot be stat'ed (the read that follows reports why). */
function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/**
 * Checks a private key file of Airlock's (`what`: "CA key", "leaf key") before it is used.
 * - Owned by another user: throws a CaError naming the file, its owner and `airlock ca rotate`.
 *   That user can read or replace it; Airlock does not use a key someone else controls.
 * - Readable or writable by group or others: tightened to 0600, and a warning is returned: the
 *   key may have been copied while it was open, so the CA should be replaced.
 * - Any other bit beyond 0600 (owner execute): tightened silently.
 * Returns the warning sentence, or null. A file that cannot be stat'ed is left to the read that
 * follows, which reports it with its own sentence.
 */
export function secureKeyFile(path: string, what: string): string | null {
  const st = statOrNull(path);
  if (!st || !st.isFile()) return null; // the read that follows says what is wrong
  const uid = myUid();
  if (uid !== null && st.uid !== uid) {
    throw new CaError(
      `The Airlock ${what} at ${path} is owned by ${ownerName(st.uid)}, not by the user running Airlock (${ownerName(uid)}), ` +
      'who can read or replace it; Airlock will not use it. Run `airlock ca rotate` as this user to make a new CA.',
      'unavailable', { path, owner: st.uid },
    );
  }
  const mode = st.mode & 0o777;
  if ((mode & ~0o600) === 0) return null;
  try {
    chmodSync(path, 0o600);
  } catch (err) {
    throw new CaError(
      `The Airlock ${what} at ${path} is open to other users (mode ${mode.toString(8).padStart(4, '0')}) and could not be made 0600 (${errnoOf(err)}); ` +
      'fix its permissions, then run `airlock ca rotate`.', 'unavailable', { path, mode },
    );
  }
  if (uid === null || (mode & 0o077) === 0) return null;
  return `The Airlock ${what} at ${path} was open to other users of this machine (mode ${mode.toString(8).padStart(4, '0')}); ` +
    'it is 0600 now, but it may have been copied meanwhile: run `airlock ca rotate` to replace the CA (tools must then trust the new one).';
}

/**
 * Checks a public file of Airlock's that others must not change (`what`: "CA certificate"): one
 * writable by group or others is made 0644 when it is this user's. Returns a warning sentence when
 * the file was writable by others or is owned by another user (who can replace it), or null.
 */
export function checkPublicFile(path: string, what: string): string | null {
  const st = statOrNull(path);
  if (!st) return null;
  const uid = myUid();
  if (uid === null || !st.isFile()) return null;
  const mode = st.mode & 0o777;
  const octal = mode.toString(8).padStart(4, '0');
  if (st.uid !== uid) {
    return `The Airlock ${what} at ${path} is owned by ${ownerName(st.uid)}, not by the user running Airlock (${ownerName(uid)})` +
      `${mode & 0o022 ? `, and others can write it (mode ${octal})` : ''}: whoever owns it can replace it. ` +
      'Check that it is yours and run `airlock ca rotate` as this user.';
  }
  if ((mode & 0o022) === 0) return null;
  try {
    chmodSync(path, 0o644);
  } catch {
    // warned below either way
  }
  return `The Airlock ${what} at ${path} was writable by other users of this machine (mode ${octal}); it is 0644 now. ` +
    'If you did not expect that, run `airlock ca rotate`.';
}
