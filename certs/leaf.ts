import {
  X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign,
  type KeyObject,
} from 'node:crypto';
import { chmodSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { defaultWarn, type CertAuthority } from './ca';
import { ContextPool } from './context-pool';
import { CaError, errnoOf } from './errors';
import { createFileOnce, secureKeyFile } from './fsutil';
import { ipv6Bytes, leafFileName, validateHostname, type HostKind } from './hostname';
import { certificatePem, derChildren, leafTbs } from './leaf-der';

const DAY = 24 * 60 * 60 * 1000;
/** Leaf lifetime: the CA/Browser Forum maximum that Apple and Chrome accept. */
export const LEAF_LIFETIME_MS = 397 * DAY;
/** A cached leaf with less than this left is reissued. */
export const LEAF_RENEW_MS = 30 * DAY;
/** How long a new leaf waits before its disk-cache copy is written (see `queueWrite`). */
export const LEAF_WRITE_DELAY_MS = 200;
/**
 * Most files kept in the disk cache (`leavesDir`) by default. Any name an agent sends as SNI gets a
 * leaf, so without a bound the directory (read whole at start) grows with every name ever seen.
 */
export const LEAF_DISK_MAX = 5000;

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * The one leaf key shared by every host: ECDSA P-256. Its TLS handshake
 * signature and its parsing in createSecureContext cost a fraction of an RSA
 * key's, which is most of the cost of a first request to a new host. (The CA
 * itself stays RSA 2048 and signs the leaves.)
 */
interface LeafKey {
  /** SEC1 PEM. */
  pem: string;
  key: KeyObject;
  /** DER SubjectPublicKeyInfo, spliced into each certificate. */
  spkiDer: Buffer;
  /** Spare TLS contexts holding this key. */
  pool: ContextPool;
}

interface Entry {
  certPem: string;
  ctx: SecureContext;
  notAfterMs: number;
}

export interface LeafIssuerOptions {
  /** Size of the in-memory LRU of SecureContexts (default 1000). */
  maxEntries?: number;
  /**
   * Most files in the disk cache (default LEAF_DISK_MAX). Past it the least recently used (oldest
   * modification time: a file is touched when it is read) are deleted, also at start.
   */
  maxDiskEntries?: number;
  /** Receives a warning sentence (the leaf key was open to other users). Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

/**
 * Issues per-host leaf certificates signed by the Airlock CA. All leaves share
 * one ECDSA P-256 key (`paths.leafKey`); each certificate is written from a DER
 * template (`leaf-der.ts`) and signed by OpenSSL with the CA's RSA key.
 * Results are kept in an LRU of SecureContexts and on disk under `leavesDir`.
 */
export class LeafIssuer {
  /** `issueMs`: total time spent building + signing the `issued` certificates. */
  readonly stats = { issued: 0, memoryHits: 0, diskHits: 0, issueMs: 0 };

  private readonly maxEntries: number;
  private readonly maxDiskEntries: number;
  private readonly warn: (message: string) => void;
  private readonly now: () => Date;
  private readonly caKey: KeyObject;
  private readonly caPublic: KeyObject;
  /** The CA's subject Name exactly as its certificate encodes it (each leaf's issuer). */
  private readonly issuerName: Buffer;
  private readonly caKeyId: Buffer;
  private readonly caNotAfterMs: number;
  private readonly lru = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private leafKeyP: Promise<LeafKey> | undefined;
  private leavesDirReady = false;
  /**
   * File names in leavesDir: read at start, plus those written since, minus those deleted; saves a
   * failed open per new host. In order of use, least recent first (and with the time of that use),
   * once `diskOrdered`; until then the names read at start are in directory order.
   */
  private onDisk: Map<string, number> | null = null;
  private diskOrdered = false;
  /** The disk-cache trim under way (see `trimDisk`), or null. */
  private trimming: Promise<void> | null = null;
  /** Disk-cache writes still under way (see `flush`). */
  private readonly pendingWrites = new Set<Promise<void>>();
  /** New leaves waiting for their disk-cache write (see `queueWrite`). */
  private readonly toWrite: Array<{ file: string; name: string; pem: string }> = [];
  private writeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly ca: CertAuthority, opts: LeafIssuerOptions = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 1000);
    this.maxDiskEntries = Math.max(1, opts.maxDiskEntries ?? LEAF_DISK_MAX);
    this.warn = opts.onWarning ?? defaultWarn;
    this.now = opts.now ?? (() => new Date());
    try {
      this.caKey = createPrivateKey(ca.keyPem);
      this.caPublic = createPublicKey(this.caKey);
      const caCert = forge.pki.certificateFromPem(ca.certPem);
      // Certificate → TBSCertificate → [version, serial, signature, issuer, validity, subject, …]
      const tbs = derChildren(derChildren(new X509Certificate(ca.certPem).raw)[0]!);
      this.issuerName = tbs[tbs[0]![0] === 0xa0 ? 5 : 4]!;
      const ski = caCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
      this.caKeyId = ski?.subjectKeyIdentifier
        ? Buffer.from(ski.subjectKeyIdentifier, 'hex')
        : Buffer.from(forge.pki.getPublicKeyFingerprint(caCert.publicKey, { type: 'RSAPublicKey' }).getBytes(), 'binary');
      this.caNotAfterMs = caCert.validity.notAfter.getTime();
    } catch (err) {
      throw new CaError(`The Airlock CA at ${ca.paths.dir} cannot be used to issue certificates (${errnoOf(err)}); run \`airlock ca rotate\`.`);
    }
  }

  /**
   * Loads the leaf key and the list of cached leaves and makes the spare TLS contexts,
   * so that the first tunnel does not pay for them. Failures surface on first use.
   */
  async warm(): Promise<void> {
    try {
      (await this.leafKey()).pool.fill();
    } catch {
      // reported by the first getSecureContext, with its sentence
    }
  }

  /** Drops the spare contexts and stops making new ones. */
  close(): void {
    this.writeQueued();
    void this.leafKeyP?.then((k) => k.pool.close(), () => undefined);
  }

  /** Resolves when every leaf issued so far has been written to the disk cache (or failed to be), and the cache trimmed. */
  async flush(): Promise<void> {
    this.writeQueued();
    while (this.pendingWrites.size > 0) await Promise.all([...this.pendingWrites]);
  }

  /**
   * The disk copy of a new leaf is written a little later, together with any others issued
   * meanwhile: the file operations' JavaScript runs on the event loop, and right after issuing,
   * that loop is busy with the two TLS handshakes and the first request the leaf was made for.
   */
  private queueWrite(file: string, name: string, pem: string): void {
    this.toWrite.push({ file, name, pem });
    if (!this.writeTimer) {
      this.writeTimer = setTimeout(() => this.writeQueued(), LEAF_WRITE_DELAY_MS);
      this.writeTimer.unref();
    }
  }

  private writeQueued(): void {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = null;
    for (const { file, name, pem } of this.toWrite.splice(0)) {
      this.track(this.writeCached(file, pem).then((ok) => {
        if (ok) this.used(name);
      }));
    }
  }

  private track(p: Promise<void>): void {
    this.pendingWrites.add(p);
    void p.finally(() => this.pendingWrites.delete(p));
  }

  /** `name` is on disk and was just written or read: it becomes the most recent, and the cache is trimmed. */
  private used(name: string): void {
    if (!this.onDisk) return;
    this.onDisk.delete(name);
    this.onDisk.set(name, Date.now());
    this.trimDisk();
  }

  /**
   * Deletes the least recently used files while the disk cache holds more than maxDiskEntries.
   * The first time, the files found at start are put in order of their modification times.
   * A file deleted while a request reads it only costs a reissue.
   */
  private trimDisk(): void {
    if (this.trimming || !this.onDisk || this.onDisk.size <= this.maxDiskEntries) return;
    const run = (async () => {
      try {
        while (this.onDisk && this.onDisk.size > this.maxDiskEntries) {
          if (!this.diskOrdered) await this.orderDisk();
          const excess = [...this.onDisk.keys()].slice(0, this.onDisk.size - this.maxDiskEntries);
          for (const name of excess) this.onDisk.delete(name);
          for (let i = 0; i < excess.length; i += 64) {
            await Promise.all(excess.slice(i, i + 64).map((n) => rm(join(this.ca.paths.leavesDir, n), { force: true }).catch(() => {})));
          }
        }
      } finally {
        this.trimming = null;
      }
    })();
    this.trimming = run;
    this.track(run);
  }

  /** Orders `onDisk` by the files' modification times (those gone are dropped). */
  private async orderDisk(): Promise<void> {
    const names = [...this.onDisk!.keys()];
    const mtimes = new Map<string, number>();
    for (let i = 0; i < names.length; i += 64) {
      await Promise.all(names.slice(i, i + 64).map(async (n) => {
        try {
          mtimes.set(n, (await stat(join(this.ca.paths.leavesDir, n))).mtimeMs);
        } catch {
          // gone: not counted
        }
      }));
    }
    const now = this.onDisk!;
    // Names written or read while the files were stat'ed keep the time they were used.
    const ordered = [...now.entries()]
      .map(([n, t]): [string, number] | null => (mtimes.has(n) && t === 0 ? [n, mtimes.get(n)!] : t === 0 ? null : [n, t]))
      .filter((e): e is [string, number] => e !== null)
      .sort((a, b) => a[1] - b[1]);
    this.onDisk = new Map(ordered);
    this.diskOrdered = true;
  }

  /** A TLS context (the host's leaf certificate + the shared leaf key) for `host`. */
  async getSecureContext(host: string): Promise<SecureContext> {
    return (await this.entry(host)).ctx;
  }

  async getCertificate(host: string): Promise<{ certPem: string; keyPem: string }> {
    const [e, leaf] = await Promise.all([this.entry(host), this.leafKey()]);
    return { certPem: e.certPem, keyPem: leaf.pem };
  }

  private entry(host: string): Promise<Entry> {
    let kind: HostKind;
    try {
      kind = validateHostname(host);
    } catch (err) {
      return Promise.reject(err);
    }
    const k = kind.value;
    const hit = this.lru.get(k);
    if (hit && hit.notAfterMs - this.now().getTime() > LEAF_RENEW_MS) {
      this.lru.delete(k);
      this.lru.set(k, hit);
      this.stats.memoryHits++;
      return Promise.resolve(hit);
    }
    const pending = this.inflight.get(k);
    if (pending) {
      this.stats.memoryHits++;
      return pending;
    }
    const p = this.load(kind).finally(() => this.inflight.delete(k));
    this.inflight.set(k, p);
    return p;
  }

  private async load(kind: HostKind): Promise<Entry> {
    const leaf = await this.leafKey();
    const name = leafFileName(kind);
    const file = join(this.ca.paths.leavesDir, name);
    let cert = this.onDisk && !this.onDisk.has(name) ? null : await this.readCached(file, kind, leaf);
    if (cert) {
      this.stats.diskHits++;
      // Recently used: the disk cache's trim keeps it (also across restarts, by its mtime).
      const t = new Date();
      this.track(utimes(file, t, t).then(() => this.used(name), () => {}));
    } else {
      const t0 = performance.now();
      cert = await this.issue(kind, leaf);
      this.stats.issueMs += performance.now() - t0;
      this.stats.issued++;
      this.queueWrite(file, name, cert.certPem);
    }
    const entry: Entry = {
      certPem: cert.certPem,
      // Leaf only: clients that trust the CA have it already, and parsing it again
      // would add ~0.4 ms per new host.
      ctx: leaf.pool.take(cert.certPem),
      notAfterMs: cert.notAfterMs,
    };
    this.lru.delete(kind.value);
    this.lru.set(kind.value, entry);
    while (this.lru.size > this.maxEntries) {
      this.lru.delete(this.lru.keys().next().value as string);
    }
    return entry;
  }

  /** Writes one leaf from the DER template (certs/leaf-der.ts); OpenSSL signs it with the CA key on the thread pool. */
  private async issue(kind: HostKind, leaf: LeafKey): Promise<{ certPem: string; notAfterMs: number }> {
    const now = this.now().getTime();
    const notAfter = new Date(Math.min(now + LEAF_LIFETIME_MS, this.caNotAfterMs));
    const tbs = leafTbs(
      { issuerName: this.issuerName, caKeyId: this.caKeyId, spki: leaf.spkiDer },
      {
        commonName: kind.value,
        altName: kind.type === 'dns' ? { type: 'dns', value: kind.value } : { type: 'ip', bytes: ipBytes(kind.value) },
        notBefore: new Date(now - DAY),
        notAfter,
      },
    );
    // With a callback the RSA signature runs on libuv's thread pool: the event loop goes on
    // with the upstream handshake and other tunnels meanwhile.
    const signature = await new Promise<Buffer>((resolve, reject) =>
      sign('sha256', tbs, this.caKey, (err, sig) => (err ? reject(err) : resolve(sig))));
    return { certPem: certificatePem(tbs, signature), notAfterMs: Math.floor(notAfter.getTime() / 1000) * 1000 };
  }

  private async readCached(
    file: string, kind: HostKind, leaf: LeafKey,
  ): Promise<{ certPem: string; notAfterMs: number } | null> {
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch {
      return null;
    }
    try {
      const x = new X509Certificate(pem);
      const now = this.now().getTime();
      const notAfterMs = new Date(x.validTo).getTime();
      if (new Date(x.validFrom).getTime() > now) return null;
      if (!(notAfterMs - now > LEAF_RENEW_MS)) return null;
      if (!x.verify(this.caPublic)) return null; // issued by an older CA
      if (!x.checkPrivateKey(leaf.key)) return null; // issued for an older leaf key
      const matches = kind.type === 'dns'
        ? x.checkHost(kind.value, { subject: 'never', wildcards: false }) !== undefined
        : x.checkIP(kind.value) !== undefined;
      // Only the leaf itself: anything appended to the file (more certificates) is not served as its chain.
      return matches ? { certPem: x.toString(), notAfterMs } : null;
    } catch {
      return null; // corrupt cache file: reissue and overwrite
    }
  }

  private async writeCached(file: string, pem: string): Promise<boolean> {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      if (!this.leavesDirReady) {
        await mkdir(this.ca.paths.leavesDir, { recursive: true, mode: 0o700 });
        this.leavesDirReady = true;
      }
      await writeFile(tmp, pem, { mode: 0o644, flag: 'wx' });
      await rename(tmp, file);
      return true;
    } catch {
      // The disk cache is an optimisation; a failure only costs a reissue later.
      await rm(tmp, { force: true }).catch(() => {});
      return false;
    }
  }

  private leafKey(): Promise<LeafKey> {
    if (!this.leafKeyP) {
      this.leafKeyP = Promise.all([
        loadOrCreateLeafKey(this.ca.paths.leafKey, this.warn),
        readdir(this.ca.paths.leavesDir).then((names) => new Map(names.map((n) => [n, 0])), (err: NodeJS.ErrnoException) =>
          err.code === 'ENOENT' ? new Map<string, number>() : null),
      ]).then(([leaf, names]) => {
        this.onDisk = names;
        this.diskOrdered = names !== null && names.size === 0;
        this.trimDisk(); // a cache over the bound (an older Airlock's, or a smaller bound) shrinks at start
        return leaf;
      });
      this.leafKeyP.catch(() => { this.leafKeyP = undefined; });
    }
    return this.leafKeyP;
  }
}

function ipBytes(ip: string): Buffer {
  return ip.includes(':') ? ipv6Bytes(ip) : Buffer.from(ip.split('.').map(Number));
}

function toLeafKey(pem: string): LeafKey {
  const key = createPrivateKey(pem);
  // An RSA leaf key from an older Airlock counts as outdated: a new EC key replaces it.
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('not an ECDSA P-256 key');
  }
  const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const sec1 = key.export({ type: 'sec1', format: 'pem' }).toString();
  return { pem: sec1, key, spkiDer, pool: new ContextPool(sec1) };
}

/**
 * Reads the shared leaf key, or creates it (0600) if missing or corrupt. One owned by another user
 * is refused; one open to other users is made 0600 and reported to `warn` (see secureKeyFile).
 */
async function loadOrCreateLeafKey(path: string, warn: (message: string) => void): Promise<LeafKey> {
  const unreadable = (err: unknown) => new CaError(
    `The Airlock leaf key at ${path} is unreadable (${errnoOf(err)}). Fix its permissions or run \`airlock ca rotate\`.`,
  );
  let existing: string | null = null;
  try {
    existing = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(err);
  }
  if (existing !== null) {
    const warning = secureKeyFile(path, 'leaf key'); // throws for a key another user owns
    if (warning) warn(warning);
    try {
      return toLeafKey(existing);
    } catch {
      // corrupt: replaced below; certificates for the old key fail checkPrivateKey and are reissued
    }
  }
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    if (existing === null) {
      // Exclusive (another process may have won the race), also where hard links do not exist.
      if (!createFileOnce(path, pem, 0o600)) return toLeafKey(await readFile(path, 'utf8'));
    } else {
      await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
      chmodSync(tmp, 0o600);
      await rename(tmp, path);
    }
  } catch (err) {
    if (err instanceof CaError) throw err;
    throw new CaError(`Could not write the Airlock leaf key at ${path} (${errnoOf(err)}); check that the directory is writable.`);
  } finally {
    await rm(tmp, { force: true }).catch(() => {});
  }
  return toLeafKey(pem);
}
