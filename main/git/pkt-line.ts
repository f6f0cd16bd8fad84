// pkt-line framing (gitprotocol-common): 4 hex digits of length (including the
// 4 length bytes) followed by the payload; 0000 flush, 0001 delim, 0002 response-end.
import { GitProtocolError } from './errors';

/** Largest pkt-line on the wire, length prefix included (LARGE_PACKET_MAX). */
export const MAX_PKT_LEN = 65520;
/** Largest payload of one pkt-line. */
export const MAX_PKT_DATA = MAX_PKT_LEN - 4;

export const FLUSH: Buffer = Buffer.from('0000', 'latin1');
export const DELIM: Buffer = Buffer.from('0001', 'latin1');
export const RESPONSE_END: Buffer = Buffer.from('0002', 'latin1');

export type PktType = 'data' | 'flush' | 'delim' | 'response-end';
export interface Pkt {
  type: PktType;
  data?: Buffer;
}

/** Frames one pkt-line. Strings are encoded as UTF-8; no newline is added. */
export function encodePkt(data: Buffer | string): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = payload.length + 4;
  if (len > MAX_PKT_LEN) {
    throw new GitProtocolError(`A pkt-line payload of ${payload.length} bytes exceeds the ${MAX_PKT_DATA}-byte limit.`);
  }
  const out = Buffer.allocUnsafe(len);
  out.write(len.toString(16).padStart(4, '0'), 0, 'latin1');
  payload.copy(out, 4);
  return out;
}

const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * Reads pkt-lines from `offset` up to and including the first flush-pkt, or to the
 * end of `buf` when there is none. `end` is the offset just after the last pkt read.
 */
export function decodePkts(buf: Buffer, offset = 0): { pkts: Pkt[]; end: number } {
  const pkts: Pkt[] = [];
  let pos = offset;
  while (pos < buf.length) {
    if (buf.length - pos < 4) {
      throw new GitProtocolError(`Truncated pkt-line at byte ${pos}: only ${buf.length - pos} bytes left for a 4-byte length.`);
    }
    const hex = buf.toString('latin1', pos, pos + 4);
    if (!HEX4.test(hex)) {
      throw new GitProtocolError(`Bad pkt-line length ${JSON.stringify(hex)} at byte ${pos}: expected 4 hex digits.`);
    }
    const len = parseInt(hex, 16);
    if (len === 0) {
      pkts.push({ type: 'flush' });
      return { pkts, end: pos + 4 };
    }
    if (len === 1) { pkts.push({ type: 'delim' }); pos += 4; continue; }
    if (len === 2) { pkts.push({ type: 'response-end' }); pos += 4; continue; }
    if (len < 4) throw new GitProtocolError(`Bad pkt-line length ${hex} at byte ${pos}: lengths 0003 and below are reserved.`);
    if (len > MAX_PKT_LEN) {
      throw new GitProtocolError(`Bad pkt-line length ${hex} at byte ${pos}: it exceeds the ${MAX_PKT_LEN}-byte maximum.`);
    }
    if (pos + len > buf.length) {
      throw new GitProtocolError(`Truncated pkt-line at byte ${pos}: length ${len} but only ${buf.length - pos} bytes left.`);
    }
    pkts.push({ type: 'data', data: buf.subarray(pos + 4, pos + len) });
    pos += len;
  }
  return { pkts, end: pos };
}

/** Payload as text without one trailing LF (git tolerates either). */
export function pktText(data: Buffer): string {
  const n = data.length > 0 && data[data.length - 1] === 0x0a ? data.length - 1 : data.length;
  return data.toString('utf8', 0, n);
}
