// Builds the response body of `POST …/git-receive-pack`: report-status pkt-lines,
// optionally multiplexed on side-band channels (band 1 data, band 2 progress).
import { decodePkts, encodePkt, FLUSH, MAX_PKT_LEN, pktText } from './pkt-line';
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

// Beyond C0 controls: C1 controls (U+009B is a CSI to many terminals), line and paragraph separators,
// and the bidirectional and invisible characters `airlock show` marks.
const UNSAFE_BEYOND_C0 = '\\x7f-\\x9f\\u2028\\u2029\\u061c\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2069\\ufeff';
const UNSAFE_IN_REASON = new RegExp(`[\\x00-\\x1f${UNSAFE_BEYOND_C0}]+`, 'g');
/** Progress keeps LF and CR (git redraws a progress line on CR). */
const UNSAFE_IN_PROGRESS = new RegExp(`[\\x00-\\x09\\x0b\\x0c\\x0e-\\x1f${UNSAFE_BEYOND_C0}]`, 'g');

/** One line of protocol text: no CR/LF or other control characters, bounded length. */
export function sanitizeReason(text: string, maxLen = 500): string {
  // An agent-chosen reason (a ref name, a refusal text) must not rewrite or disguise the line git prints it on.
  const s = text.replace(UNSAFE_IN_REASON, ' ').replace(/ {2,}/g, ' ').trim();
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
  const s = msg.replace(UNSAFE_IN_PROGRESS, ' ');
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

/** What a receive-pack answered: its `unpack` status and each ref's `ok` or `ng <reason>`. */
export interface ReceivePackReport {
  unpack: string;
  refs: RefResult[];
}

/**
 * Reads an upstream's answer to a push (report-status, on side-band band 1 when the push asked for
 * side-band; band 3 is a fatal error). Null when it holds no report (a push that did not ask for
 * report-status, an answer cut short or not pkt-lines): what upstream did is then not known from it.
 */
export function parseReceivePackResult(buf: Buffer, sideBand: SideBand): ReceivePackReport | null {
  try {
    let report = buf;
    if (sideBand !== null) {
      const band1: Buffer[] = [];
      for (const p of decodePkts(buf, 0).pkts) {
        if (p.type !== 'data' || !p.data || p.data.length === 0) continue;
        if (p.data[0] === 1) band1.push(p.data.subarray(1));
        else if (p.data[0] === 3) return { unpack: sanitizeReason(p.data.subarray(1).toString('utf8')), refs: [] };
      }
      report = Buffer.concat(band1);
    }
    let unpack: string | null = null;
    const refs: RefResult[] = [];
    for (const p of decodePkts(report, 0).pkts) {
      if (p.type !== 'data' || !p.data) continue;
      const line = pktText(p.data);
      if (line.startsWith('unpack ')) unpack = line.slice(7);
      else if (line.startsWith('ok ')) refs.push({ ref: line.slice(3), ok: true });
      else if (line.startsWith('ng ')) {
        const rest = line.slice(3);
        const sp = rest.indexOf(' ');
        refs.push(sp < 0 ? { ref: rest, ok: false, reason: 'rejected' } : { ref: rest.slice(0, sp), ok: false, reason: rest.slice(sp + 1) });
      }
    }
    return unpack === null ? null : { unpack, refs };
  } catch {
    return null;
  }
}

/** `ok` when upstream unpacked the push and updated every ref; otherwise one line saying what it refused. */
export function describeReport(r: ReceivePackReport): string {
  const refused = r.refs.filter((x): x is Extract<RefResult, { ok: false }> => !x.ok);
  if (r.unpack === 'ok' && refused.length === 0) return 'ok';
  const parts = r.unpack === 'ok' ? [] : [`unpack failed (${r.unpack})`];
  for (const x of refused) parts.push(`${x.ref}: ${x.reason}`);
  return sanitizeReason(`upstream rejected ${parts.join('; ')}`, 1000);
}
