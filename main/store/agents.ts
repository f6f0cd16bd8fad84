// Agents and their proxy tokens (only SHA-256 hashes of tokens are stored).
import type Database from 'better-sqlite3';
import { AirlockError } from '../contract/errors';
import type { AgentRecord, AgentsRepo, AgentTokenInfo } from './types';

export const AGENT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

interface AgentRow {
  name: string;
  groups_json: string;
  created_at: string;
}

function rowToAgent(r: AgentRow): AgentRecord {
  return { name: r.name, groups: JSON.parse(r.groups_json) as string[], createdAt: r.created_at };
}

function normalizeHash(h: string): string {
  const lower = typeof h === 'string' ? h.toLowerCase() : '';
  if (!SHA256_HEX_RE.test(lower)) throw new AirlockError('bad-request', 'A token hash must be 64 hexadecimal digits (SHA-256).');
  return lower;
}

export function createAgentsRepo(db: Database.Database, now: () => Date): AgentsRepo {
  const getStmt = db.prepare<[string], AgentRow>('SELECT * FROM agents WHERE name = ?');
  const listStmt = db.prepare<[], AgentRow>('SELECT * FROM agents ORDER BY name');
  const insertStmt = db.prepare('INSERT INTO agents (name, groups_json, created_at) VALUES (?, ?, ?)');
  const deleteTokensStmt = db.prepare('DELETE FROM agent_tokens WHERE agent = ?');
  const deleteStmt = db.prepare('DELETE FROM agents WHERE name = ?');
  const insertTokenStmt = db.prepare('INSERT INTO agent_tokens (hash, agent, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)');
  const hasTokenStmt = db.prepare<[string], { agent: string }>('SELECT agent FROM agent_tokens WHERE hash = ?');
  const deleteTokenStmt = db.prepare('DELETE FROM agent_tokens WHERE hash = ?');
  const tokensStmt = db.prepare<[string], { hash: string; label: string; created_at: string; expires_at: string | null }>(
    'SELECT hash, label, created_at, expires_at FROM agent_tokens WHERE agent = ? ORDER BY created_at, hash',
  );
  const findStmt = db.prepare<[string, string], AgentRow & { expires_at: string | null; label: string }>(
    `SELECT a.name, a.groups_json, a.created_at, t.expires_at, t.label
       FROM agent_tokens t JOIN agents a ON a.name = t.agent
      WHERE t.hash = ? AND t.agent = ?`,
  );

  const removeTx = db.transaction((name: string): boolean => {
    deleteTokensStmt.run(name); // ON DELETE CASCADE does this too; explicit in case foreign_keys was off
    return deleteStmt.run(name).changes > 0;
  });

  return {
    add(name, groups) {
      if (typeof name !== 'string' || !AGENT_NAME_RE.test(name)) {
        throw new AirlockError(
          'bad-request',
          `Agent name ${JSON.stringify(name)} is invalid: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.`,
        );
      }
      if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || g.length === 0)) {
        throw new AirlockError('bad-request', 'Agent groups must be a list of non-empty strings.');
      }
      const rec: AgentRecord = { name, groups: [...new Set(groups)], createdAt: now().toISOString() };
      try {
        insertStmt.run(rec.name, JSON.stringify(rec.groups), rec.createdAt);
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new AirlockError('conflict', `An agent named ${name} already exists.`);
        }
        throw err;
      }
      return rec;
    },
    remove(name) {
      return removeTx(name);
    },
    get(name) {
      const r = getStmt.get(name);
      return r ? rowToAgent(r) : null;
    },
    list() {
      return listStmt.all().map(rowToAgent);
    },
    addToken(name, tokenSha256Hex, label, expiresAt) {
      const hash = normalizeHash(tokenSha256Hex);
      let expires: string | null = null;
      if (expiresAt !== null && expiresAt !== undefined) {
        const d = new Date(expiresAt);
        if (Number.isNaN(d.getTime())) throw new AirlockError('bad-request', `Token expiry ${JSON.stringify(expiresAt)} is not a valid date.`);
        expires = d.toISOString();
      }
      if (!getStmt.get(name)) throw new AirlockError('not-found', `There is no agent named ${name}.`);
      if (hasTokenStmt.get(hash)) throw new AirlockError('conflict', 'This token is already registered.');
      insertTokenStmt.run(hash, name, String(label ?? ''), now().toISOString(), expires);
    },
    removeToken(tokenSha256Hex) {
      deleteTokenStmt.run(String(tokenSha256Hex).toLowerCase());
    },
    tokens(name): AgentTokenInfo[] {
      return tokensStmt.all(name).map((t) => ({ hash: t.hash, label: t.label, createdAt: t.created_at, expiresAt: t.expires_at }));
    },
    findByToken(name, tokenSha256Hex, at) {
      if (typeof tokenSha256Hex !== 'string' || typeof name !== 'string') return null;
      const r = findStmt.get(tokenSha256Hex.toLowerCase(), name);
      if (!r) return null;
      if (r.expires_at !== null && Date.parse(r.expires_at) <= (at ?? now()).getTime()) return null;
      return { ...rowToAgent(r), via: r.label };
    },
  };
}
