// A recorded body as a person reads it (CLI `airlock exchange`, console `getExchange`): decoded when
// the sender content-encoded it, JSON indented, text only when it is text, and cut at a limit.
// Plain data: the callers escape it for a terminal or render it as text, never as HTML.
import { decodeCodings } from './mask';
import type { ExchangeRecord, HeaderMap } from './types';

export interface BodyDisplay {
  /** 'none': no bytes kept; 'binary': not text (described, not shown); 'text': `text` holds it. */
  kind: 'none' | 'binary' | 'text';
  /** The text to show (at most `limit` characters), or null. */
  text: string | null;
  /** What was done for display, in words: "gzip-decoded", "JSON indented", …; '' when nothing. */
  note: string;
  /** Bytes of the (decoded) text left out beyond `limit`; 0 when all of it is shown. */
  moreBytes: number;
}

/**
 * The request body of a held push, kept with its review rather than in the record: the review's id and
 * the body's SHA-256 (the name of its file under `<data-dir>/pushes/`). null for any other body.
 */
export function keptWithReview(x: Pick<ExchangeRecord, 'reviewId' | 'requestBody' | 'requestBytes' | 'requestBodySha256'>): { reviewId: string; sha256: string } | null {
  if (!x.reviewId || !x.requestBodySha256 || x.requestBytes === 0 || (x.requestBody && x.requestBody.length > 0)) return null;
  return { reviewId: x.reviewId, sha256: x.requestBodySha256 };
}

/**
 * The body with the sender's content-encoding (gzip, deflate, br) removed, and what was done in words.
 * A body cut at the capture cap, an unknown encoding, or one that does not decode (or decodes to more than
 * MAX_CHECKED_DECODED_BYTES: a small body that inflates without end) comes back as it was.
 */
export function decodeContent(body: Buffer, headers: HeaderMap | null, complete: boolean): { bytes: Buffer; note: string } {
  const header = headers?.['content-encoding'];
  const enc = (Array.isArray(header) ? header.join(', ') : String(header ?? '')).trim().toLowerCase();
  if (!enc || enc === 'identity') return { bytes: body, note: '' };
  if (!complete) return { bytes: body, note: `${enc}-encoded, cut at the capture cap: not decoded` };
  // The same decoding the masker checks bodies with (mask.ts): lists of codings, raw deflate, zstd where Node has it.
  const d = decodeCodings(body, enc, true);
  if (d === 'none') return { bytes: body, note: '' };
  if (d === 'unknown') return { bytes: body, note: `${enc}-encoded` };
  if (d === 'failed') return { bytes: body, note: `${enc}-encoded; does not decode` };
  return { bytes: d.bytes, note: `${enc}-decoded for display` };
}

/**
 * Whether `b` reads as text: valid UTF-8 with few control characters. Up to 3 bytes at the end may
 * be a character cut in half when the bytes are a prefix (cut at `limit` or at the capture cap).
 */
function looksLikeText(b: Buffer, limit: number, prefix: boolean): boolean {
  if (b.length === 0) return true;
  const head = b.subarray(0, Math.min(b.length, limit));
  const maxCut = prefix || head.length < b.length ? 3 : 0;
  let text: string | null = null;
  for (let cut = 0; cut <= maxCut && text === null && cut < head.length; cut++) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.length - cut));
    } catch { /* one byte less */ }
  }
  if (text === null) return false;
  const controls = text.match(/[\u0000-\u0008\u000e-\u001f]/g)?.length ?? 0;
  return controls <= text.length / 100;
}

export function displayBody(body: Buffer | null, headers: HeaderMap | null, complete: boolean, limit: number): BodyDisplay {
  if (!body || body.length === 0) return { kind: 'none', text: null, note: '', moreBytes: 0 };
  const { bytes, note } = decodeContent(body, headers, complete);
  if (!looksLikeText(bytes, limit, !complete)) return { kind: 'binary', text: null, note, moreBytes: 0 };
  let text = bytes.toString('utf8').replace(/\uFFFD+$/, ''); // a character cut at the end
  const notes = note ? [note] : [];
  if (/\bjson\b/i.test(String(headers?.['content-type'] ?? '')) && bytes.length <= 16 * limit) {
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
      notes.push('JSON indented for display');
    } catch { /* shown as it is */ }
  }
  if (text.length <= limit) return { kind: 'text', text, note: notes.join(', '), moreBytes: 0 };
  return { kind: 'text', text: text.slice(0, limit), note: notes.join(', '), moreBytes: Buffer.byteLength(text.slice(limit)) };
}
