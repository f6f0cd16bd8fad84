#!/usr/bin/env node
// The `airlock` command. Runs the TypeScript sources through tsx so that the CLI
// needs no build step; the desktop app uses the electron-vite bundle instead.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../main/cli.ts');
process.exitCode = await main(process.argv.slice(2));
