// electron-vite build for the desktop app and the web console bundle.
//   main     main/index.ts        -> out/main/index.js   (ESM, Electron main process)
//   preload  preload/index.ts     -> out/preload/index.cjs (CommonJS: sandboxed preloads cannot be ESM)
//   renderer renderer/index.html  -> out/renderer/        (also served by the web console)
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

const root = import.meta.dirname ?? process.cwd();
const r = (p: string) => resolve(root, p);

// The core service (main/service.ts) is loaded by the desktop shell at run time
// from a sibling bundle, so the shell builds even before that file exists.
const mainEntries: Record<string, string> = { index: r('main/index.ts') };
if (existsSync(r('main/service.ts'))) mainEntries.service = r('main/service.ts');

export default defineConfig({
  main: {
    build: {
      outDir: r('out/main'),
      externalizeDeps: true,
      lib: { entry: mainEntries, formats: ['es'] },
      rolldownOptions: { output: { entryFileNames: '[name].js' } },
    },
  },
  preload: {
    build: {
      outDir: r('out/preload'),
      externalizeDeps: true,
      lib: { entry: { index: r('preload/index.ts') }, formats: ['cjs'] },
      rolldownOptions: { output: { entryFileNames: '[name].cjs' } },
    },
  },
  renderer: {
    root: r('renderer'),
    plugins: [react()],
    build: {
      outDir: r('out/renderer'),
      // The same bundle is served to ordinary browsers by the web console.
      target: 'es2022',
      rolldownOptions: { input: r('renderer/index.html') },
    },
  },
});
