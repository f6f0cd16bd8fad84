// Masking of credentials before anything is written to disk.
import { isUtf8 } from 'node:buffer';
import { brotliCompressSync, brotliDecompressSync, constants, deflateSync, gunzipSync, gzipSync, inflateRawSync, inflateSync, type ZlibOptions } from 'node:zlib';
import * as zlib from 'node:zlib';

export const MASK = '[masked]';

/** Header names whose value is always masked (compared case-insensitively); see also SENSITIVE_HEADER_NAME. */
export const SENSITIVE_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'cookie2',
  'set-cookie',
  'set-cookie2',
  'x-api-key',
]);

/**
 * Other header names that carry credentials in the APIs agents call, masked too: a word naming a
 * token, secret, password, signature, session, credential or auth, or a name ending in `key`
 * (x-goog-api-key, api-key (Azure), private-token and job-token (GitLab), x-auth-token,
 * x-vault-token, x-amz-security-token, dd-api-key, dd-application-key, x-hub-signature-256, …).
 * Over-masking a harmless header (idempotency-key) costs the record a value; under-masking would
 * leak an agent's key into a file auditors export.
 */
export const SENSITIVE_HEADER_NAME =
  /(?:^|[-_.])(?:auth|token|secret|secrets|password|passwd|passphrase|signature|session|sessionid|credential|credentials|otp|apikey)(?:$|[-_.\d])|key$/;

const sensitiveNames = new Map<string, boolean>();
/** Whether a header's value is masked whatever it holds (names compared in lower case; answers cached). */
export function isSensitiveHeader(name: string): boolean {
  let r = sensitiveNames.get(name);
  if (r === undefined) {
    const lower = name.toLowerCase();
    r = SENSITIVE_HEADERS.has(lower) || SENSITIVE_HEADER_NAME.test(lower);
    if (sensitiveNames.size >= 1024) sensitiveNames.clear(); // agent-chosen names: bounded
    sensitiveNames.set(name, r);
  }
  return r;
}

/**
 * Query parameters whose value is masked in a recorded path: OAuth tokens and codes, API keys
 * (`key` for Google APIs), passwords, secrets and signatures (AWS and Google presigned URLs, Azure
 * SAS `sig`), and any name ending in _token, _secret, _key, _password or _signature.
 */
export const SENSITIVE_QUERY_PARAM =
  /^(?:token|apikey|key|auth|code|secret|password|passwd|pwd|sig|signature|x-amz-credential|x-goog-credential)$|[-_](?:token|secret|key|password|signature)$/;

/** A request path with the values of sensitive query parameters replaced by '[masked]'. */
export function maskQuery(path: string): string {
  const q = path.indexOf('?');
  if (q === -1) return path;
  const parts = path.slice(q + 1).split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const eq = p.indexOf('=');
    if (eq === -1) continue;
    let name = p.slice(0, eq);
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // a malformed escape: judged as written
    }
    if (SENSITIVE_QUERY_PARAM.test(name.toLowerCase()) && eq < p.length - 1) {
      parts[i] = `${p.slice(0, eq)}=${MASK}`;
      changed = true;
    }
  }
  return changed ? `${path.slice(0, q)}?${parts.join('&')}` : path;
}

/**
 * The values of a path's sensitive query parameters (those maskQuery masks), decoded, when they are long
 * enough to search for: an upstream may echo them in a body or a redirect's Location, where they are
 * masked too.
 */
export function querySecrets(path: string): string[] {
  const q = path.indexOf('?');
  if (q === -1) return [];
  const out: string[] = [];
  for (const p of path.slice(q + 1).split('#')[0]!.split('&')) {
    const eq = p.indexOf('=');
    if (eq === -1) continue;
    const decode = (s: string): string => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        return s; // a malformed escape: as written
      }
    };
    if (!SENSITIVE_QUERY_PARAM.test(decode(p.slice(0, eq)).toLowerCase())) continue;
    const raw = p.slice(eq + 1);
    for (const v of new Set([raw, decode(raw)])) if (v.length >= MIN_HEADER_SECRET_LENGTH) out.push(v);
  }
  return out;
}

/** Secrets shorter than this are ignored: masking "ab" everywhere would destroy the record without protecting anything. */
export const MIN_SECRET_LENGTH = 4;

/**
 * The forms a secret takes where an upstream most often echoes it back (an error message, a
 * `/headers`-style debug answer, a redirect URL): as it is; JSON-escaped, also with `\/` (PHP) and
 * with non-ASCII as `\uXXXX` (Python); percent-encoded (upper- and lower-case hex, `+` for a space).
 * A deliberately disguised secret (every character escaped, base32, split) is not found: masking
 * keeps the record free of what Airlock injects, it cannot undo an encoding chosen to hide it.
 */
export function secretForms(secret: string): string[] {
  const json = JSON.stringify(secret).slice(1, -1);
  const ascii = json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  let pct = secret;
  try {
    pct = encodeURIComponent(secret);
  } catch {
    // a lone surrogate: no percent-encoded form
  }
  return [secret, json, json.replace(/\//g, '\\/'), ascii, ascii.replace(/\//g, '\\/'),
    pct, pct.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), pct.replace(/%20/g, '+')];
}

/** Distinct usable secrets in each of their forms (`secretForms`), longest first (so a secret containing another is masked whole). */
export function normalizeSecrets(secrets: readonly string[]): string[] {
  const usable = secrets.filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH);
  return [...new Set(usable.flatMap(secretForms))].sort((a, b) => b.length - a.length);
}

/** Credentials shorter than this, found in an exchange's own headers, are not searched for elsewhere (too likely to match by chance). */
const MIN_HEADER_SECRET_LENGTH = 8;

/**
 * The credentials an exchange carries in its own sensitive headers (an agent's `Authorization:
 * Bearer …`, `x-api-key`, cookie values, a `Set-Cookie` session): masked by name in the headers, and
 * searched for in the rest of that exchange's record too, where an upstream may echo them (a debug
 * endpoint, an error page quoting the request). Each value whole, its last word (the token after
 * `Bearer`/`Basic`), a Basic credential's password, and each cookie's value.
 */
export function headerSecrets(h: Record<string, string | string[] | undefined> | null | undefined): string[] {
  if (!h) return [];
  const out: string[] = [];
  for (const [name, v] of Object.entries(h)) {
    if (v === undefined || !isSensitiveHeader(name)) continue;
    for (const value of Array.isArray(v) ? v : [v]) {
      const lower = name.toLowerCase();
      if (lower === 'cookie' || lower === 'cookie2' || lower === 'set-cookie' || lower === 'set-cookie2') {
        const pairs = lower.startsWith('set-') ? [value.split(';')[0] ?? ''] : value.split(';');
        for (const p of pairs) {
          const eq = p.indexOf('=');
          if (eq !== -1) out.push(p.slice(eq + 1).trim());
        }
        continue;
      }
      const v2 = value.trim();
      out.push(v2);
      const word = v2.split(/\s+/).pop() ?? '';
      out.push(word);
      if (/^basic\s/i.test(v2)) {
        const decoded = Buffer.from(word, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon !== -1) out.push(decoded.slice(colon + 1));
      }
    }
  }
  return out.filter((x) => x.length >= MIN_HEADER_SECRET_LENGTH);
}

/** `secrets` (normalised, longest first) with the normalised forms of `more` added. */
export function withMoreSecrets(secrets: readonly string[], more: readonly string[]): readonly string[] {
  if (more.length === 0) return secrets;
  return [...new Set([...secrets, ...normalizeSecrets(more)])].sort((a, b) => b.length - a.length);
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
    if (isSensitiveHeader(name)) {
      out[name] = Array.isArray(value) ? value.map(() => MASK) : MASK;
    } else if (Array.isArray(value)) {
      out[name] = value.map((v) => maskTextPre(String(v), list));
    } else {
      out[name] = maskTextPre(String(value), list);
    }
  }
  return out;
}

/** Each secret as JSON.stringify writes it inside a string (computed once per secret list). */
const jsonForms = new WeakMap<readonly string[], string[]>();
function asInJson(normalized: readonly string[]): string[] {
  let forms = jsonForms.get(normalized);
  if (!forms) jsonForms.set(normalized, (forms = normalized.map((s) => JSON.stringify(s).slice(1, -1))));
  return forms;
}

/**
 * `JSON.stringify(maskHeadersPre(h, normalized))`, without the masked copy when nothing in `h` needs
 * masking (the common case: every value a string or an array of strings, no sensitive name, no secret
 * in the text). A secret is looked for in the JSON text itself, written as JSON.stringify writes any
 * string value (so a secret with a character JSON escapes is found in its escaped form).
 */
export function maskedHeadersJson(h: Record<string, string | string[] | undefined>, normalized: readonly string[]): string {
  if (onlyPlainValues(h)) {
    const json = JSON.stringify(h);
    if (!asInJson(normalized).some((secret) => json.includes(secret))) return json;
  }
  return JSON.stringify(maskHeadersPre(h, normalized));
}

/** No sensitive header name, and every value a string or an array of strings (what maskHeadersPre returns unchanged). */
function onlyPlainValues(h: Record<string, string | string[] | undefined>): boolean {
  for (const name in h) {
    if (isSensitiveHeader(name)) return false;
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
 * A JSON-like value with every secret masked in each string in it (values and keys, at any depth);
 * `changed` says whether one was found. The value is copied only where something changed.
 */
export function maskDeep<T>(value: T, normalized: readonly string[]): { value: T; changed: boolean } {
  if (normalized.length === 0) return { value, changed: false };
  let changed = false;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const m = maskTextPre(v, normalized);
      if (m !== v) changed = true;
      return m;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[walk(k) as string] = walk(x);
      return out;
    }
    return v;
  };
  const masked = walk(value) as T;
  return changed ? { value: masked, changed } : { value, changed };
}

/**
 * Masks secrets inside a captured body, whatever its encoding: every occurrence of a secret's UTF-8
 * bytes. In a text body (valid UTF-8, allowing a character cut off at the end of a capped prefix)
 * each becomes '[masked]'; in any other body (binary, Latin-1, a protobuf) a run of '*' of the same
 * length, so offsets in it stay where they were. Returns the same Buffer when nothing was found.
 */
export function maskBody(body: Buffer, normalized: readonly string[]): Buffer {
  if (normalized.length === 0 || body.length === 0) return body;
  return maskCutTail(maskWhole(body, normalized), normalized);
}

/** A content-encoded body is decoded up to this size to look for secrets; past it one cannot be ruled out. */
export const MAX_CHECKED_DECODED_BYTES = 16 * 1024 * 1024;

export interface Codec {
  decode(b: Buffer, complete: boolean): Buffer;
  encode(b: Buffer): Buffer;
}
const zlibOpts = (complete: boolean): ZlibOptions => ({ maxOutputLength: MAX_CHECKED_DECODED_BYTES, ...(complete ? {} : { finishFlush: constants.Z_SYNC_FLUSH }) });
const gzip: Codec = { decode: (b, c) => gunzipSync(b, zlibOpts(c)), encode: (b) => gzipSync(b) };
const CODECS: Record<string, Codec> = {
  gzip,
  'x-gzip': gzip,
  deflate: {
    // RFC 9110's deflate is zlib-wrapped; some servers send raw deflate.
    decode: (b, c) => {
      try {
        return inflateSync(b, zlibOpts(c));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw e;
        return inflateRawSync(b, zlibOpts(c));
      }
    },
    encode: (b) => deflateSync(b),
  },
  br: {
    decode: (b, c) => brotliDecompressSync(b, { maxOutputLength: MAX_CHECKED_DECODED_BYTES, ...(c ? {} : { finishFlush: constants.BROTLI_OPERATION_FLUSH }) }),
    encode: (b) => brotliCompressSync(b),
  },
};

/**
 * maskBody for a body recorded with its `Content-Encoding`. A gzip, deflate or br body (or a list
 * of them, `gzip, br`: undone last first) is also decoded (a capped prefix as far as it goes), and
 * when a secret is in the decoded bytes they are masked and encoded again the same way, so the
 * record stays a body of that encoding. Returns null, so that the body is not stored (its hash and
 * size are), whenever it cannot be checked: it decodes to more than MAX_CHECKED_DECODED_BYTES, a
 * coding is unknown here (zstd on Node 20, compress), or it does not decode (cut short, a bad
 * checksum, junk after its end). Compressed bytes hide a secret from a byte search, so a body that
 * cannot be decoded is never kept as it came. Identity, or no secret to look for: maskBody.
 */
export function maskEncodedBody(body: Buffer, contentEncoding: unknown, complete: boolean, normalized: readonly string[]): Buffer | null {
  const raw = maskBody(body, normalized);
  if (normalized.length === 0 || body.length === 0 || typeof contentEncoding !== 'string') return raw;
  const d = decodeCodings(body, contentEncoding, complete);
  if (d === 'none') return raw;
  if (d === 'unknown' || d === 'failed') return null;
  const masked = maskBody(d.bytes, normalized);
  if (masked === d.bytes) return raw;
  let out = masked;
  for (const c of d.codecs) out = c.encode(out);
  return out;
}

/**
 * A body with its `Content-Encoding` undone: a list (`gzip, br`) from the last coding listed, each of
 * gzip, deflate (zlib-wrapped or raw), br and (on Node ≥ 22.15) zstd, up to MAX_CHECKED_DECODED_BYTES. A cut
 * prefix (`complete` false) decodes as far as it goes. 'none' when no coding applies; 'unknown' when one is
 * not known here; 'failed' when it does not decode (or decodes past the limit).
 */
export function decodeCodings(body: Buffer, contentEncoding: string, complete: boolean): { bytes: Buffer; codecs: Codec[] } | 'none' | 'unknown' | 'failed' {
  const codings = contentEncoding.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return 'none';
  const codecs = codings.map((c) => codecFor(c));
  if (codecs.some((c) => c === null)) return 'unknown';
  let decoded = body;
  try {
    // Applied in the order listed, so undone from the last. Each layer inside a cut one is cut too.
    for (let i = codecs.length - 1; i >= 0; i--) decoded = codecs[i]!.decode(decoded, complete);
  } catch {
    return 'failed';
  }
  return { bytes: decoded, codecs: codecs as Codec[] };
}

function codecFor(coding: string): Codec | null {
  if (Object.hasOwn(CODECS, coding)) return CODECS[coding]!;
  if (coding === 'zstd' && typeof zstdDecompressSync === 'function' && typeof zstdCompressSync === 'function') {
    return {
      decode: (b) => zstdDecompressSync!(b, { maxOutputLength: MAX_CHECKED_DECODED_BYTES }),
      encode: (b) => zstdCompressSync!(b),
    };
  }
  return null;
}

// Node ≥ 22.15 / 23.8 has zstd; on older Node a zstd body cannot be checked.
const { zstdDecompressSync, zstdCompressSync } = zlib as unknown as {
  zstdDecompressSync?: (b: Buffer, o?: { maxOutputLength?: number }) => Buffer;
  zstdCompressSync?: (b: Buffer) => Buffer;
};

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

const MASK_BYTES = Buffer.from(MASK);

function maskWhole(body: Buffer, normalized: readonly string[]): Buffer {
  let out = body;
  let text: boolean | null = null;
  for (const secret of normalized) {
    let i = out.indexOf(secret, 0, 'utf8');
    if (i === -1) continue;
    text ??= utf8PrefixEnd(body) >= 0;
    const needle = Buffer.from(secret, 'utf8');
    const parts: Buffer[] = [];
    let from = 0;
    while (i !== -1) {
      parts.push(out.subarray(from, i), text ? MASK_BYTES : Buffer.alloc(needle.length, 0x2a));
      from = i + needle.length;
      i = out.indexOf(needle, from);
    }
    parts.push(out.subarray(from));
    out = Buffer.concat(parts);
  }
  return out;
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
