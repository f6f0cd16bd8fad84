// Builds the response body of `POST …/git-receive-pack`: report-status pkt-lines,
// optionally multiplexed on side-band channels (band 1 data, band 2 progress).
import { encodePkt, FLUSH, MAX_PKT_LEN } from './pkt-line';
import type { SideBand } from './receive-pack';

export const RECEIVE_PACK_RESULT_CONTENT_TYPE = 'application/x-git-receive-pack-result';

export type RefResult = { ref: string; ok: true } | { ref: string; ok: false; reason: string };

export interface ReceivePackResultOptions {
  /** true → `unpack ok`; a string → `unpack <string>` (an unpack error). */
  unpackOk: true | string;
  refs: RefResult[];
  sideBand: SideBand;
  /** Progress messages sent on band 2 before the report (git prints each as `remote: …`). */
  progress?: string[];
}

/** Max bytes of one side-band packet, length prefix included. */
function bandPacketMax(sideBand: Exclude<SideBand, null>): number {
  return sideBand === 'side-band-64k' ? MAX_PKT_LEN : 1000;
}

/** One line of protocol text: no CR/LF or other control characters, bounded length. */
export function sanitizeReason(text: string, maxLen = 500): string {
  const s = text.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  const chars = Array.from(s);
  return chars.length > maxLen ? `${chars.slice(0, maxLen - 1).join('')}…` : s || 'rejected';
}

/** Splits `data` into band packets of at most the side-band maximum. */
function bandPackets(band: 1 | 2 | 3, data: Buffer, sideBand: Exclude<SideBand, null>): Buffer[] {
  const max = bandPacketMax(sideBand) - 5;
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += max) {
    out.push(encodePkt(Buffer.concat([Buffer.from([band]), data.subarray(i, i + max)])));
  }
  return out;
}

function reportPkts(opts: ReceivePackResultOptions): Buffer {
  const lines: Buffer[] = [];
  lines.push(encodePkt(`unpack ${opts.unpackOk === true ? 'ok' : sanitizeReason(opts.unpackOk)}\n`));
  for (const r of opts.refs) {
    const ref = sanitizeReason(r.ref, 4000);
    lines.push(encodePkt(r.ok ? `ok ${ref}\n` : `ng ${ref} ${sanitizeReason(r.reason)}\n`));
  }
  lines.push(FLUSH);
  return Buffer.concat(lines);
}

export function buildReceivePackResult(opts: ReceivePackResultOptions): Buffer {
  const report = reportPkts(opts);
  if (opts.sideBand === null) return report;
  const parts: Buffer[] = [];
  for (const msg of opts.progress ?? []) {
    parts.push(...bandPackets(2, Buffer.from(progressText(msg), 'utf8'), opts.sideBand));
  }
  parts.push(...bandPackets(1, report, opts.sideBand), FLUSH);
  return Buffer.concat(parts);
}

function progressText(msg: string): string {
  // Keep '\r' (git uses it to redraw a progress line); other controls become spaces.
  const s = msg.replace(/[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]/g, ' ');
  return /[\n\r]$/.test(s) ? s : `${s}\n`;
}

/**
 * One band-2 packet carrying `msg` (e.g. "Airlock: still waiting for review #12\n"), for
 * streaming while a push is held. Truncated to fit one packet; empty without side-band.
 */
export function sideBandProgress(msg: string, sideBand: SideBand): Buffer {
  if (sideBand === null) return Buffer.alloc(0);
  let data = Buffer.from(progressText(msg), 'utf8');
  const max = bandPacketMax(sideBand) - 5;
  if (data.length > max) {
    let cut = max - 1;
    while (cut > 0 && (data[cut] & 0xc0) === 0x80) cut--; // do not split a UTF-8 sequence
    data = Buffer.concat([data.subarray(0, cut), Buffer.from('\n')]);
  }
  return encodePkt(Buffer.concat([Buffer.from([2]), data]));
}
