import {
  X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign,
  type KeyObject,
} from 'node:crypto';
import { chmodSync } from 'node:fs';
import { link, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import forge from 'node-forge';
import type { CertAuthority } from './ca';
import { ContextPool } from './context-pool';
import { CaError, errnoOf } from './errors';
import { ipv6Bytes, leafFileName, validateHostname, type HostKind } from './hostname';
import { certificatePem, derChildren, leafTbs } from './leaf-der';

const DAY = 24 * 60 * 60 * 1000;
/** Leaf lifetime: the CA/Browser Forum maximum that Apple and Chrome accept. */
export const LEAF_LIFETIME_MS = 397 * DAY;
/** A cached leaf with less than this left is reissued. */
export const LEAF_RENEW_MS = 30 * DAY;
/** How long a new leaf waits before its disk-cache copy is written (see `queueWrite`). */
export const LEAF_WRITE_DELAY_MS = 200;

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
  /** File names present in leavesDir at start (plus those written since); saves a failed open per new host. */
  private onDisk: Set<string> | null = null;
  /** Disk-cache writes still under way (see `flush`). */
  private readonly pendingWrites = new Set<Promise<void>>();
  /** New leaves waiting for their disk-cache write (see `queueWrite`). */
  private readonly toWrite: Array<{ file: string; name: string; pem: string }> = [];
  private writeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly ca: CertAuthority, opts: LeafIssuerOptions = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 1000);
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

  /** Resolves when every leaf issued so far has been written to the disk cache (or failed to be). */
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
      const written = this.writeCached(file, pem).then((ok) => {
        if (ok) this.onDisk?.add(name);
      });
      this.pendingWrites.add(written);
      void written.finally(() => this.pendingWrites.delete(written));
    }
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
      return matches ? { certPem: pem, notAfterMs } : null;
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
        loadOrCreateLeafKey(this.ca.paths.leafKey),
        readdir(this.ca.paths.leavesDir).then((names) => new Set(names), (err: NodeJS.ErrnoException) =>
          err.code === 'ENOENT' ? new Set<string>() : null),
      ]).then(([leaf, names]) => {
        this.onDisk = names;
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

/** Reads the shared leaf key, or creates it (0600) if missing or corrupt. */
async function loadOrCreateLeafKey(path: string): Promise<LeafKey> {
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
    try {
      const leaf = toLeafKey(existing);
      if (((await stat(path)).mode & 0o777 & ~0o600) !== 0) chmodSync(path, 0o600);
      return leaf;
    } catch {
      // corrupt: replaced below; certificates for the old key fail checkPrivateKey and are reissued
    }
  }
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    if (existing === null) {
      try {
        await link(tmp, path); // exclusive: another process may have won the race
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        return toLeafKey(await readFile(path, 'utf8'));
      }
    } else {
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
