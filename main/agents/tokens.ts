import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new agent token: 32 random bytes, URL-safe, prefixed so it is recognisable in a leak scan. */
export function newAgentToken(): string {
  return 'alk_' + randomBytes(32).toString('base64url');
}

/** Tokens are high-entropy random strings, so a plain SHA-256 is the right hash (no password stretching needed). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface BasicCredentials {
  user: string;
  password: string;
}

/** Parses a `Basic …` header value; null when absent or malformed. */
export function parseBasic(header: string | undefined): BasicCredentials | null {
  if (!header) return null;
  const m = /^\s*Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0) return null;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}
