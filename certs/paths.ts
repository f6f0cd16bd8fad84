import { join } from 'node:path';

export interface CaPaths {
  dir: string;
  cert: string;
  key: string;
  bundle: string;
  leafKey: string;
  leavesDir: string;
}

/** Where the CA lives inside Airlock's data directory. */
export function caPaths(dataDir: string): CaPaths {
  const dir = join(dataDir, 'ca');
  return {
    dir,
    cert: join(dir, 'ca.pem'),
    key: join(dir, 'ca.key'),
    bundle: join(dir, 'bundle.pem'),
    leafKey: join(dir, 'leaf.key'),
    leavesDir: join(dir, 'leaves'),
  };
}
