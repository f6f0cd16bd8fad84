import { hashToken, parseBasic } from './tokens';

export interface AgentIdentity {
  name: string;
  groups: string[];
  /** The first 12 hex digits of the SHA-256 of the token used (as in the audit log's agent.token-issued). */
  token?: string;
  /** The token's label: what it was issued for ("run claude (pid 4242)"). */
  via?: string | null;
}

export interface AgentLookup {
  findByToken(name: string, tokenSha256Hex: string, now?: Date): { name: string; groups: string[]; via?: string } | null;
}

export type AuthResult = { ok: true; agent: AgentIdentity } | { ok: false; reason: string };

/**
 * Answers "who is it?" for every request and CONNECT: `Proxy-Authorization: Basic
 * base64(agent:token)`. Successful lookups are cached briefly so the hot path
 * does not hit SQLite per request; removals take effect within `ttlMs`.
 */
export class AgentAuthenticator {
  private cache = new Map<string, { agent: AgentIdentity; until: number }>();

  constructor(private readonly lookup: AgentLookup, private readonly ttlMs = 5_000) {}

  authenticate(header: string | undefined): AuthResult {
    if (!header) return { ok: false, reason: 'no Proxy-Authorization header' };
    const now = Date.now();
    const hit = this.cache.get(header);
    if (hit && hit.until > now) return { ok: true, agent: hit.agent };
    const creds = parseBasic(header);
    if (!creds) return { ok: false, reason: 'Proxy-Authorization is not Basic agent:token' };
    const hash = hashToken(creds.password);
    const rec = this.lookup.findByToken(creds.user, hash);
    if (!rec) return { ok: false, reason: `unknown agent or wrong token for "${creds.user}"` };
    const agent: AgentIdentity = { name: rec.name, groups: rec.groups, token: hash.slice(0, 12), via: rec.via ?? null };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(header, { agent, until: now + this.ttlMs });
    return { ok: true, agent };
  }

  invalidate(): void {
    this.cache.clear();
  }
}
