import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, lstatSync, readdirSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QUARANTINE_PREFIX } from '../git/push-analysis';
import { randomUUID } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';

const CHANGED = 'the held push body changed after it was reviewed; it will not be forwarded';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number, readonly prefix: Buffer) {
    super(`the push is larger than the ${limit >= 1024 ** 2 ? `${Math.round(limit / 1024 ** 2)} MiB` : `${limit} byte`} limit`);
  }
}

/**
 * A request body held for review: read completely before anything goes
 * upstream, kept in memory while small and spooled to a 0600 file in the data
 * directory when large (memory stays bounded), with the SHA-256 of the exact
 * bytes. `open()` re-checks that hash before the bytes are forwarded.
 */
export class HeldBody {
  private constructor(
    readonly size: number,
    readonly sha256: string,
    private readonly memory: Buffer | null,
    private _file: string | null,
  ) {}

  private kept = false;

  get file(): string | null {
    return this._file;
  }

  private set file(f: string | null) {
    this._file = f;
  }

  static async read(src: Readable, opts: { maxBytes: number; spoolThreshold: number; spoolDir: string }): Promise<HeldBody> {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    let file: string | null = null;
    let out: WriteStream | null = null;
    let head: Buffer = Buffer.alloc(0);
    try {
      for await (const c of src as AsyncIterable<Buffer>) {
        if (head.length < 65536) head = Buffer.concat([head, c.subarray(0, 65536 - head.length)]);
        size += c.length;
        if (size > opts.maxBytes) throw new BodyTooLargeError(opts.maxBytes, head);
        hash.update(c);
        if (out) {
          // An error between drains would leave write() false and 'drain' never coming: fail instead.
          if (out.errored) throw out.errored;
          if (!out.write(c)) await once(out, 'drain');
        } else {
          chunks.push(c);
          if (size > opts.spoolThreshold) {
            await mkdir(opts.spoolDir, { recursive: true, mode: 0o700 });
            file = join(opts.spoolDir, `push-${randomUUID()}.body`);
            // Open the file here (not lazily inside createWriteStream): the file
            // exists once this returns, so the cleanup's rm below cannot run before
            // a pending open on libuv's thread pool (which then left the file behind).
            const fh = await open(file, 'wx', 0o600);
            out = fh.createWriteStream();
            out.on('error', () => {}); // surfaced by once(), `errored` and end() below
            for (const b of chunks.splice(0)) if (!out.write(b)) await once(out, 'drain');
          }
        }
      }
      if (out) await new Promise<void>((res, rej) => out!.end((e?: Error | null) => (e ? rej(e) : res())));
    } catch (e) {
      if (out && !out.closed) {
        const o = out;
        await new Promise<void>((r) => {
          o.once('close', () => r());
          o.destroy();
        });
      }
      if (file) await rm(file, { force: true });
      throw e;
    }
    return new HeldBody(size, hash.digest('hex'), out ? null : Buffer.concat(chunks), file);
  }

  /** The first `n` bytes (the command section of a push lives there). */
  async prefix(n: number): Promise<Buffer> {
    if (this.memory) return this.memory.subarray(0, n);
    const fh = await open(this.file!, 'r');
    try {
      const buf = Buffer.alloc(Math.min(n, this.size));
      await fh.read(buf, 0, buf.length, 0);
      return buf;
    } finally {
      await fh.close();
    }
  }

  get inMemory(): Buffer | null {
    return this.memory;
  }

  stream(start = 0): Readable {
    if (this.memory) return Readable.from([this.memory.subarray(start)]);
    return createReadStream(this.file!, { start, highWaterMark: 256 * 1024 });
  }

  /**
   * Recomputes the hash and returns the bytes to forward; throws if they changed since review. A
   * spooled body is read again to be forwarded, so that read is checked too (`checkedStream`): a file
   * changed in between never reaches upstream whole.
   */
  async verified(): Promise<{ body: Buffer | (() => Readable); length: number }> {
    const h = createHash('sha256');
    if (this.memory) h.update(this.memory);
    else for await (const c of this.stream() as AsyncIterable<Buffer>) h.update(c);
    if (h.digest('hex') !== this.sha256) throw new Error(CHANGED);
    return { body: this.memory ?? (() => this.checkedStream()), length: this.size };
  }

  /**
   * The spooled body as it is forwarded, checked as it streams: never more than `size` bytes, and its
   * last chunk is let through only once the SHA-256 of all of them is the reviewed one. Otherwise the
   * stream fails, and the upstream request (which declared `size` bytes) ends incomplete.
   */
  checkedStream(): Readable {
    const { size, sha256 } = this;
    const h = createHash('sha256');
    let n = 0;
    let last: Buffer | null = null;
    const check = new Transform({
      transform(c: Buffer, _enc, cb) {
        n += c.length;
        if (n > size) return cb(new Error(CHANGED));
        h.update(c);
        const prev = last;
        last = c;
        if (prev) cb(null, prev);
        else cb();
      },
      flush(cb) {
        if (n !== size || h.digest('hex') !== sha256) return cb(new Error(CHANGED));
        if (last) this.push(last);
        cb();
      },
    });
    return pipeline(this.stream(), check, () => undefined);
  }

  /**
   * Keeps the exact bytes for the record as `<dir>/<sha256>.body` (0600): a spooled
   * body is moved there (not copied), a small one written. Later reads (`verified`,
   * `stream`) use the kept file. Returns its path.
   */
  async keep(dir: string): Promise<string> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const target = join(dir, `${this.sha256}.body`);
    if (this.file === target) return target;
    if (this.file) {
      await rename(this.file, target);
      this.file = target;
    } else {
      await writeFile(target, this.memory!, { mode: 0o600 });
    }
    this.kept = true;
    return target;
  }

  /** Removes the spool file, unless the body was kept for the record. */
  async dispose(): Promise<void> {
    if (this.file && !this.kept) await rm(this.file, { force: true });
  }
}

/**
 * Removes what a gateway left in the spool (push bodies being read, packs being analysed): only a
 * running gateway uses it, one per data dir, so at start everything there is left from a gateway
 * that stopped uncleanly; each file can be up to maxPushBytes. Returns what was removed.
 */
export function clearSpool(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { files, bytes };
  }
  for (const name of names) {
    if (name.startsWith(QUARANTINE_PREFIX) && /^[\w-]+$/.test(name)) {
      // A push's indexed objects (its code), left by an analysis that never finished.
      const left = treeSize(join(dir, name));
      if (removeTree(join(dir, name))) {
        files += left.files;
        bytes += left.bytes;
      }
      continue;
    }
    if (!/^(push-[\w-]+\.body|pack-[\w-]+\.pack)$/.test(name)) continue;
    const file = join(dir, name);
    try {
      const size = statSync(file).size;
      rmSync(file, { force: true });
      files++;
      bytes += size;
    } catch {
      /* gone already */
    }
  }
  return { files, bytes };
}

/**
 * Removes a directory tree; true when it is gone. git writes its pack files read-only, which Windows
 * will not delete: on a failure everything is made writable and the removal tried once more. A tree
 * that still cannot be removed is left (the start of a gateway must not fail on it).
 */
function removeTree(dir: string): boolean {
  try {
    rmSync(dir, { recursive: true, force: true });
    return true;
  } catch {
    makeWritable(dir);
    try {
      rmSync(dir, { recursive: true, force: true });
      return true;
    } catch {
      return false;
    }
  }
}

function makeWritable(dir: string): void {
  try {
    chmodSync(dir, 0o700);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) makeWritable(join(dir, e.name));
      else if (e.isFile()) chmodSync(join(dir, e.name), 0o600);
    }
  } catch {
    /* best effort */
  }
}

/** Files and bytes under a directory (symbolic links not followed). */
function treeSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return { files, bytes };
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = treeSize(p);
      files += sub.files;
      bytes += sub.bytes;
    } else {
      files++;
      try { bytes += lstatSync(p).size; } catch { /* gone */ }
    }
  }
  return { files, bytes };
}
