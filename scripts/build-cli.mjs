// Bundles the `airlock` CLI and gateway (main/cli.ts) into out/cli/cli.mjs.
// Running from the bundle instead of through the tsx loader saves ~33 MB of
// RSS (the loader's worker thread) and start-up time; bin/airlock.mjs falls
// back to tsx when the bundle is missing or older than the sources.
import { build } from 'esbuild';

await build({
  entryPoints: ['main/cli.ts'],
  outfile: 'out/cli/cli.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
