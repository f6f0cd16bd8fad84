import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * The per-user data directory, following each platform's convention:
 * Linux `$XDG_CONFIG_HOME/airlock` (default ~/.config/airlock), macOS
 * `~/Library/Application Support/Airlock`, Windows `%APPDATA%\Airlock`.
 * `--data-dir` or `AIRLOCK_DATA_DIR` override it.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.AIRLOCK_DATA_DIR) return resolve(env.AIRLOCK_DATA_DIR);
  const home = homedir();
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'Airlock');
  // An empty or relative XDG_CONFIG_HOME is ignored, as the XDG spec says (a relative one would give every
  // working directory its own data directory).
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'Airlock');
  return join(env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home, '.config'), 'airlock');
}

export interface DataPaths {
  dir: string;
  db: string;
  adminToken: string;
  config: string;
  nodePreload: string;
  /** wget's startup file for agent runs (`WGETRC`): GnuTLS wget reads no CA variable. */
  wgetrc: string;
  runtime: string; // written by a running gateway: ports, pid
  spool: string;
  gitCache: string;
  credentialsKey: string;
  credentials: string;
}

export function dataPaths(dir: string): DataPaths {
  return {
    dir,
    db: join(dir, 'airlock.db'),
    adminToken: join(dir, 'admin-token'),
    config: join(dir, 'config.yaml'),
    nodePreload: join(dir, 'node-preload.cjs'),
    wgetrc: join(dir, 'wgetrc'),
    runtime: join(dir, 'runtime.json'),
    spool: join(dir, 'spool'),
    gitCache: join(dir, 'git-cache'),
    credentialsKey: join(dir, 'credentials.key'),
    credentials: join(dir, 'credentials.json'),
  };
}
