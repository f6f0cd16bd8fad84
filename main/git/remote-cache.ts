// Per-remote bare caches of upstream repositories. They give index-pack the base objects
// of thin packs and give the analysis the upstream refs to diff against.
import { createHash } from 'node:crypto';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { git, GIT_NO_CONFIG } from './git-cli';

/** The proxy git reaches remotes through (the gateway's upstreamProxy): what this module needs of it. */
export interface GitUpstreamProxy {
  bypass(host: string): boolean;
  urlWithCredentials(): string;
}

export interface EnsureOptions {
  /** One extra request header, e.g. 'Authorization: Basic …'. Passed through the environment, never argv. */
  extraHeader?: string;
  /** CA bundle (PEM) for the upstream's TLS certificate. */
  caFile?: string;
  refs?: 'all';
  timeoutMs?: number;
}

const PROXY_VARS = ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'all_proxy', 'no_proxy'];

/**
 * Environment for git talking to the real upstream: no user config and none of the environment's
 * proxies (they may point at Airlock itself); Airlock's upstream proxy when one is set (`proxy`).
 */
export function upstreamGitEnv(opts: { extraHeader?: string; caFile?: string; proxy?: string } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of PROXY_VARS) delete env[k];
  for (const k of Object.keys(env)) if (k.startsWith('GIT_')) delete env[k];
  env.GIT_CONFIG_GLOBAL = GIT_NO_CONFIG;
  const cfg: Array<[string, string]> = [['http.proxy', opts.proxy ?? ''], ['gc.auto', '0'], ['maintenance.auto', 'false'],
    ['http.extraHeader', '']];
  if (opts.extraHeader) cfg.push(['http.extraHeader', opts.extraHeader]);
  if (opts.caFile) cfg.push(['http.sslCAInfo', opts.caFile]);
  env.GIT_CONFIG_COUNT = String(cfg.length);
  cfg.forEach(([k, v], i) => { env[`GIT_CONFIG_KEY_${i}`] = k; env[`GIT_CONFIG_VALUE_${i}`] = v; });
  return env;
}

export class RemoteCache {
  readonly rootDir: string;
  private readonly inflight = new Map<string, { running: Promise<string>; pending: Promise<string> | null }>();

  constructor(rootDir: string, private readonly proxy: GitUpstreamProxy | null = null) {
    this.rootDir = resolve(rootDir);
  }

  dirFor(remoteUrl: string): string {
    return join(this.rootDir, `${createHash('sha256').update(remoteUrl).digest('hex').slice(0, 16)}.git`);
  }

  /**
   * Creates the cache if missing and fetches all branches and tags. Concurrent calls for one
   * remote never run two fetches at once: a call made during a fetch waits for it and then
   * joins (at most) one follow-up fetch.
   */
  ensure(remoteUrl: string, opts: EnsureOptions = {}): Promise<string> {
    const dir = this.dirFor(remoteUrl);
    const st = this.inflight.get(dir);
    const run = (): Promise<string> => {
      const p = this.fetchNow(remoteUrl, dir, opts);
      const entry = this.inflight.get(dir) ?? { running: p, pending: null };
      entry.running = p;
      this.inflight.set(dir, entry);
      const done = (): void => {
        const e = this.inflight.get(dir);
        if (e && e.running === p && !e.pending) this.inflight.delete(dir);
      };
      p.then(done, done);
      return p;
    };
    if (!st) return run();
    if (st.pending) return st.pending;
    const pending = st.running.catch(() => undefined).then(() => {
      const e = this.inflight.get(dir);
      if (e) e.pending = null;
      return run();
    });
    st.pending = pending;
    return pending;
  }

  private async fetchNow(remoteUrl: string, dir: string, opts: EnsureOptions): Promise<string> {
    let host = '';
    try {
      host = new URL(remoteUrl).hostname;
    } catch {
      /* not a URL: git says so */
    }
    const proxy = this.proxy && !this.proxy.bypass(host) ? this.proxy.urlWithCredentials() : undefined;
    const env = upstreamGitEnv({ ...opts, proxy });
    const exists = await stat(join(dir, 'HEAD')).then(() => true, () => false);
    if (!exists) {
      // Copies of private repositories: the owner's only, whatever the data dir's own mode.
      await mkdir(this.rootDir, { recursive: true, mode: 0o700 });
      await chmod(this.rootDir, 0o700);
      await git(['init', '--bare', '-q', dir], { env, name: 'git init (remote cache)' });
    }
    const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    await git(['--git-dir', dir, 'fetch', '--prune', '--quiet', '--no-write-fetch-head', '--no-tags', remoteUrl,
      '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { env, timeoutMs, name: 'git fetch (remote cache)' });
    // Record the remote's default branch as the cache's HEAD (best effort).
    try {
      const r = await git(['--git-dir', dir, 'ls-remote', '--symref', remoteUrl, 'HEAD'], { env, timeoutMs: 60_000 });
      const m = /^ref: (refs\/heads\/\S+)\tHEAD$/m.exec(r.stdout.toString('utf8'));
      if (m) await git(['--git-dir', dir, 'symbolic-ref', 'HEAD', m[1]], { env });
    } catch {
      /* keep the previous HEAD */
    }
    return dir;
  }

  /** True when every oid exists in the cache. */
  async hasObjects(dir: string, oids: string[]): Promise<boolean> {
    if (oids.length === 0) return true;
    const r = await git(['--git-dir', dir, 'cat-file', '--batch-check'], {
      input: Buffer.from(oids.map((o) => `${o}\n`).join('')),
      env: { ...process.env, GIT_CONFIG_GLOBAL: GIT_NO_CONFIG },
    });
    return !r.stdout.toString('utf8').split('\n').some((l) => l.endsWith(' missing'));
  }
}
