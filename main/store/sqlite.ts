// Which better-sqlite3 this Node loads. Plain Node; the workers load the same file by path.
//
// better-sqlite3 12 is built on node::ObjectWrap. From Node 24.19 on, ObjectWrap's destructor
// removes an environment cleanup hook and aborts the process (`Assertion failed: (env) !=
// nullptr`) when a statement is garbage-collected or a worker ends. better-sqlite3 13 is built on
// Node-API and does not, but it needs Node-API 10 (Node 22.14 and later): on Node 20 it crashes in
// `new Database()`. So both are installed ("better-sqlite3-node20" is an npm alias of 12, an
// optional dependency) and this picks one by the Node-API version of the running Node.
// docs/decisions.md has the measurements.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { AirlockError } from '../contract/errors';

const require = createRequire(import.meta.url);

/** Node-API version this process supports (Node 20: 9; Node 22.14+, 24, Electron 41: 10). */
export const NAPI_VERSION = Number(process.versions.napi ?? 0);

/** The package name this process loads. */
export const SQLITE_PACKAGE = NAPI_VERSION >= 10 ? 'better-sqlite3' : 'better-sqlite3-node20';

let resolved: string | null = null;

/** Absolute path of the chosen package's entry, for worker threads to `require`. */
export function sqliteModulePath(): string {
  if (resolved) return resolved;
  try {
    resolved = require.resolve(SQLITE_PACKAGE);
  } catch {
    throw new AirlockError(
      'unavailable',
      SQLITE_PACKAGE === 'better-sqlite3-node20'
        ? `Node ${process.versions.node} (Node-API ${NAPI_VERSION}) needs better-sqlite3 12, the optional dependency "better-sqlite3-node20", which is not installed (it builds from source: run npm install where a C++ compiler is available), or use Node 22.14 or later.`
        : 'The package better-sqlite3 is not installed: run npm install.',
    );
  }
  return resolved;
}

let loaded: typeof BetterSqlite3 | null = null;

/** The better-sqlite3 `Database` class for this Node. */
export function sqlite(): typeof BetterSqlite3 {
  if (!loaded) loaded = require(sqliteModulePath()) as typeof BetterSqlite3;
  return loaded;
}

export type SqliteDatabase = BetterSqlite3.Database;
