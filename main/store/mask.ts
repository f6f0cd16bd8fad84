// Masking of credentials before anything is written to disk.
import { isUtf8 } from 'node:buffer';

export const MASK = '[masked]';

/** Header names whose value is always masked (compared case-insensitively). */
export const SENSITIVE_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
]);

/** Secrets shorter than this are ignored: masking "ab" everywhere would destroy the record without protecting anything. */
export const MIN_SECRET_LENGTH = 4;

/** Distinct usable secrets, longest first (so a secret containing another is masked whole). */
export function normalizeSecrets(secrets: readonly string[]): string[] {
  return [...new Set(secrets.filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH))].sort(
    (a, b) => b.length - a.length,
  );
}

/** Replaces every occurrence of every secret with '[masked]'. */
export function maskText(s: string, secrets: string[]): string {
  for (const secret of normalizeSecrets(secrets)) {
    if (s.includes(secret)) s = s.split(secret).join(MASK);
  }
  return s;
}

/**
 * Returns a copy of the headers with sensitive header values replaced by '[masked]' and every secret inside other
 * values replaced by '[masked]'. Undefined values are dropped; names keep their case.
 */
export function maskHeaders(
  h: Record<string, string | string[] | undefined>,
  secrets: string[],
): Record<string, string | string[]> {
  return maskHeadersPre(h, normalizeSecrets(secrets));
}

/** maskHeaders with an already-normalized secret list. */
function maskHeadersPre(
  h: Record<string, string | string[] | undefined>,
  list: readonly string[],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined) continue;
    if (SENSITIVE_HEADERS.has(name.toLowerCase())) {
      out[name] = Array.isArray(value) ? value.map(() => MASK) : MASK;
    } else if (Array.isArray(value)) {
      out[name] = value.map((v) => maskTextPre(String(v), list));
    } else {
      out[name] = maskTextPre(String(value), list);
    }
  }
  return out;
}

/** Characters JSON.stringify rewrites: a secret containing one may not appear verbatim in the JSON text. */
// eslint-disable-next-line no-control-regex
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(maskHeadersPre(h, normalized))`, without the masked copy when nothing in `h` needs
 * masking (the common case: every value a string or an array of strings, no sensitive name, no secret
 * in the text). A secret is looked for in the JSON text itself, which holds each value verbatim as long
 * as the secret has no character JSON escapes; for any other secret the copy is always made.
 */
export function maskedHeadersJson(h: Record<string, string | string[] | undefined>, normalized: readonly string[]): string {
  if (onlyPlainValues(h)) {
    const json = JSON.stringify(h);
    if (!normalized.some((secret) => JSON_ESCAPED.test(secret) || json.includes(secret))) return json;
  }
  return JSON.stringify(maskHeadersPre(h, normalized));
}

/** No sensitive header name, and every value a string or an array of strings (what maskHeadersPre returns unchanged). */
function onlyPlainValues(h: Record<string, string | string[] | undefined>): boolean {
  for (const name in h) {
    if (SENSITIVE_HEADERS.has(name.toLowerCase())) return false;
    const v = h[name];
    if (typeof v === 'string') continue;
    if (!Array.isArray(v)) return false;
    for (const x of v) if (typeof x !== 'string') return false;
  }
  return true;
}

/** maskText with an already-normalized secret list. */
export function maskTextPre(s: string, normalized: readonly string[]): string {
  for (const secret of normalized) {
    if (s.includes(secret)) s = s.split(secret).join(MASK);
  }
  return s;
}

/**
 * Masks secrets inside a captured body when it is text (valid UTF-8, allowing a multi-byte character cut off at the
 * end of a capped prefix). Binary bodies are returned unchanged. Returns the same Buffer when nothing was found.
 */
export function maskBody(body: Buffer, normalized: readonly string[]): Buffer {
  if (normalized.length === 0 || body.length === 0) return body;
  return maskCutTail(maskWhole(body, normalized), normalized);
}

/**
 * A capture cap can cut a secret in two: a body that ends with the first 4 or
 * more bytes of a secret has that tail masked too (over-masking a harmless
 * tail is the safe side).
 */
function maskCutTail(body: Buffer, normalized: readonly string[]): Buffer {
  let out = body;
  for (const secret of normalized) {
    const sb = Buffer.from(secret, 'utf8');
    for (let k = Math.min(sb.length - 1, out.length); k >= 4; k--) {
      if (out.subarray(out.length - k).equals(sb.subarray(0, k))) {
        out = Buffer.concat([out.subarray(0, out.length - k), Buffer.from(MASK)]);
        break;
      }
    }
  }
  return out;
}

function maskWhole(body: Buffer, normalized: readonly string[]): Buffer {
  let found = false;
  for (const secret of normalized) {
    if (body.indexOf(secret, 0, 'utf8') !== -1) {
      found = true;
      break;
    }
  }
  if (!found) return body;
  const textEnd = utf8PrefixEnd(body);
  if (textEnd < 0) return body;
  const text = body.subarray(0, textEnd).toString('utf8');
  const masked = maskTextPre(text, normalized);
  if (masked === text) return body; // the only occurrence straddled the cut-off tail
  const head = Buffer.from(masked, 'utf8');
  return textEnd === body.length ? head : Buffer.concat([head, body.subarray(textEnd)]);
}

/** Length of the valid UTF-8 text in `b` (tolerating up to 3 trailing bytes of one incomplete character), or -1. */
function utf8PrefixEnd(b: Buffer): number {
  if (isUtf8(b)) return b.length;
  for (let cut = 1; cut <= 3 && cut < b.length; cut++) {
    const end = b.length - cut;
    const lead = b[end]!;
    if (lead >= 0xc0 && isUtf8(b.subarray(0, end))) {
      // the tail must be a lead byte followed only by continuation bytes
      for (let i = end + 1; i < b.length; i++) if ((b[i]! & 0xc0) !== 0x80) return -1;
      return end;
    }
  }
  return -1;
}
