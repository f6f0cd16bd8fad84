import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, chmodSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { LockOptions } from 'proper-lockfile';
import { createFileOnce, writeFileAtomic } from '../../certs/fsutil';
import { AirlockError } from '../contract/errors';
import { validateHostname } from '../../certs';

/**
 * Upstream credentials the agent never sees, encrypted at rest (AES-256-GCM).
 * Headless: the key is a 0600 file in the data directory, which protects the
 * secrets from anything that copies the credentials file alone (backups, a
 * synced folder, a careless `cat`) but not from a process running as the same
 * OS user. The desktop app keeps the key with Electron's safeStorage (OS keychain) instead.
 */
export interface KeyProvider {
  getKey(): Buffer;
}

export class FileKeyProvider implements KeyProvider {
  constructor(private readonly file: string) {}
  getKey(): Buffer {
    // Created once, whole: two first `credential set` at once must not each encrypt with a key of their own.
    if (!existsSync(this.file)) createFileOnce(this.file, randomBytes(32).toString('base64') + '\n', 0o600);
    chmodSync(this.file, 0o600);
    const key = Buffer.from(readFileSync(this.file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new AirlockError('internal', `credential key file ${this.file} is corrupt (expected 32 bytes)`);
    return key;
  }
}

export interface StoredCredential {
  host: string; // host or host:port
  username: string;
  scheme: 'basic' | 'bearer';
}

interface FileEntry extends StoredCredential {
  iv: string;
  tag: string;
  data: string;
  createdAt: string;
}

export interface ResolvedCredential extends StoredCredential {
  /** The Authorization header value to send upstream. */
  header: string;
  /** Strings that must never reach the agent or the log (secret, header value, base64 forms). */
  secrets: string[];
}

/** Normalises `HOST[:PORT]` (port 443 dropped) after validating the host. */
export function normaliseHostKey(input: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(input.trim());
  if (!m) throw new AirlockError('bad-request', `"${input}" is not HOST or HOST:PORT`);
  const bracketed = m[1]!.startsWith('[');
  const parsed = validateHostname(m[1]!.replace(/^\[|\]$/g, ''));
  if (bracketed && !(parsed.type === 'ip' && parsed.value.includes(':'))) {
    throw new AirlockError('bad-request', `"${input}": brackets are only for IPv6 addresses`);
  }
  const host = parsed.value;
  const port = m[2] ? Number(m[2]) : 443;
  if (port < 1 || port > 65535) throw new AirlockError('bad-request', `bad port in "${input}"`);
  const h = host.includes(':') ? `[${host}]` : host;
  return port === 443 ? h : `${h}:${port}`;
}

export class CredentialStore {
  private cache: Map<string, ResolvedCredential> | null = null;
  private lastText = '';
  private checkedAt = 0;
  /** Bumped whenever the stored credentials change (callers refresh what depends on them). */
  version = 0;

  constructor(
    private readonly file: string,
    private readonly keys: KeyProvider,
    /** How long `set`/`remove` wait for another command's lock (default: ~14 s in 40 backed-off tries). */
    private readonly lockWait: LockOptions['retries'] = { retries: 40, factor: 1.3, minTimeout: 10, maxTimeout: 500, randomize: true },
  ) {}

  private readEntries(): FileEntry[] {
    if (!existsSync(this.file)) return [];
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { credentials?: FileEntry[] };
      return parsed.credentials ?? [];
    } catch (e) {
      throw new AirlockError('internal', `credentials file ${this.file} is corrupt: ${(e as Error).message}`);
    }
  }

  private writeEntries(entries: FileEntry[]): void {
    // A temporary file of this process's own, renamed into place: two `credential set` at once never rename each other's.
    writeFileAtomic(this.file, JSON.stringify({ version: 1, credentials: entries }, null, 2) + '\n', 0o600);
    this.cache = null;
  }

  /**
   * Runs a read-modify-write of the credentials file under a lock (`credentials.json.lock`, a
   * directory, proper-lockfile): two `credential set` at once each keep their entry. A lock left by
   * a process that died is taken over once it is 10 s stale (a live holder refreshes it every 5 s);
   * a live holder is waited for (`lockWait`), then the command fails with a `conflict`.
   */
  private async locked<T>(change: () => T): Promise<T> {
    let release: () => Promise<void>;
    try {
      // Loaded here, not at start: it brings signal-exit, whose SIGTERM/SIGINT handlers would keep a
      // gateway that hangs while starting from ending on SIGTERM (the gateway itself never locks).
      const { lock } = await import('proper-lockfile');
      release = await lock(this.file, {
        realpath: false, // the file need not exist yet
        stale: 10_000,
        retries: this.lockWait,
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      throw new AirlockError('conflict', `the credentials file is locked by another airlock command (${this.file}.lock); try again, or remove that directory if no airlock command is running`);
    }
    try {
      return change();
    } finally {
      await release();
    }
  }

  async set(hostInput: string, secret: string, opts: { username?: string; scheme?: 'basic' | 'bearer' } = {}): Promise<StoredCredential> {
    const host = normaliseHostKey(hostInput);
    if (!secret) throw new AirlockError('bad-request', 'the credential is empty (pipe it on standard input)');
    const key = this.keys.getKey();
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
    const entry: FileEntry = {
      host,
      username: opts.username ?? 'x-access-token',
      scheme: opts.scheme ?? 'basic',
      iv: iv.toString('base64'),
      tag: c.getAuthTag().toString('base64'),
      data: data.toString('base64'),
      createdAt: new Date().toISOString(),
    };
    await this.locked(() => this.writeEntries([...this.readEntries().filter((e) => e.host !== host), entry]));
    this.checkedAt = 0;
    return { host, username: entry.username, scheme: entry.scheme };
  }

  async remove(hostInput: string): Promise<boolean> {
    const host = normaliseHostKey(hostInput);
    return this.locked(() => {
      const entries = this.readEntries();
      const kept = entries.filter((e) => e.host !== host);
      if (kept.length === entries.length) return false;
      this.writeEntries(kept);
      this.checkedAt = 0;
      return true;
    });
  }

  list(): StoredCredential[] {
    return this.readEntries().map(({ host, username, scheme }) => ({ host, username, scheme }));
  }

  /**
   * Stops watching the credentials file (see `load`).
   */
  close(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  private watcher: FSWatcher | null = null;
  private watchTried = false;

  private load(): Map<string, ResolvedCredential> {
    // A credential set by the CLI (another process) is seen at once: a change to the file (replaced by
    // rename) makes the next lookup read it again. The read is otherwise at most once a second.
    if (!this.watchTried) {
      this.watchTried = true;
      try {
        const name = basename(this.file);
        this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
          if (changed === null || String(changed) === name) this.checkedAt = 0;
        });
        this.watcher.on('error', () => this.close());
      } catch {
        // no directory yet, or no file watching here: the once-a-second read still applies
      }
    }
    const now = Date.now();
    if (this.cache && now - this.checkedAt < 1000) return this.cache;
    this.checkedAt = now;
    // Compared by content, not mtime: file-system timestamps are too coarse to see every change.
    let text = '';
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      text = '';
    }
    if (this.cache && text === this.lastText) return this.cache;
    this.lastText = text;
    this.version++;
    const map = new Map<string, ResolvedCredential>();
    const entries = this.readEntries();
    if (entries.length > 0) {
      const key = this.keys.getKey();
      for (const e of entries) {
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(e.iv, 'base64'));
        d.setAuthTag(Buffer.from(e.tag, 'base64'));
        let secret: string;
        try {
          secret = Buffer.concat([d.update(Buffer.from(e.data, 'base64')), d.final()]).toString('utf8');
        } catch {
          throw new AirlockError('internal', `credential for ${e.host} cannot be decrypted (wrong key file?)`);
        }
        const basic = Buffer.from(`${e.username}:${secret}`).toString('base64');
        const header = e.scheme === 'bearer' ? `Bearer ${secret}` : `Basic ${basic}`;
        map.set(e.host, { host: e.host, username: e.username, scheme: e.scheme, header, secrets: [secret, basic, header] });
      }
    }
    this.cache = map;
    return map;
  }

  /** The credential for an upstream authority (`host` or `host:port`), if one is stored. */
  resolve(authority: string): ResolvedCredential | null {
    const map = this.load();
    if (map.size === 0) return null;
    return map.get(authority) ?? null;
  }

  /**
   * The credentials' version after looking for a change (another process's `airlock credential set`):
   * cheap, the file is read again only when it changed or a second has passed.
   */
  currentVersion(): number {
    this.load();
    return this.version;
  }

  /** Every secret value (for masking in the log). */
  allSecrets(): string[] {
    return [...this.load().values()].flatMap((c) => c.secrets);
  }
}
