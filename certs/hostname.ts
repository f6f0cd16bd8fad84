import { isIPv6 } from 'node:net';
import { CaError } from './errors';

export type HostKind = { type: 'dns' | 'ip'; value: string };

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function invalid(host: string, why: string): CaError {
  const shown = JSON.stringify(host.length > 80 ? `${host.slice(0, 80)}…` : host);
  return new CaError(`Invalid host name ${shown}: ${why}.`, 'bad-request');
}

function parseIPv4(s: string): number[] | null {
  const m = IPV4.exec(s);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  // Leading zeros are ambiguous (octal in some parsers), so they are not an address.
  if (m.slice(1).some((p) => p.length > 1 && p.startsWith('0'))) return null;
  return parts.every((n) => n <= 255) ? parts : null;
}

/** 16 bytes of an IPv6 address already accepted by `net.isIPv6` (no zone id). */
export function ipv6Bytes(addr: string): Buffer {
  let s = addr;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) throw new Error(`bad IPv6 address ${addr}`);
    tail.push(...v4);
    s = s.slice(0, lastColon + 1) + '0:0'; // placeholder groups, replaced below
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const r = rest === undefined ? [] : rest ? rest.split(':') : [];
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...r];
  if (groups.length !== 8) throw new Error(`bad IPv6 address ${addr}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  return out;
}

/** Canonical (RFC 5952, as WHATWG URL prints it) text of an IPv6 address. */
function canonicalIPv6(addr: string): string {
  return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
}

/**
 * Checks that `host` is a DNS name or IP address we are willing to issue a
 * certificate for, and returns its normalised form (lowercase, no trailing dot,
 * IPv6 without brackets and compressed). Anything else throws a CaError.
 */
export function validateHostname(host: string): HostKind {
  if (typeof host !== 'string') throw invalid(String(host), 'not a string');
  const original = host;
  if (host.length === 0) throw invalid(original, 'it is empty');
  if (host.length > 300) throw invalid(original, 'it is too long');
  // eslint-disable-next-line no-control-regex
  if (/[^\x21-\x7e]/.test(host)) {
    throw invalid(original, 'it contains spaces, control or non-ASCII characters (use the punycode xn-- form)');
  }
  if (/[/\\%*?#@]/.test(host)) throw invalid(original, 'it contains a character not allowed in host names');
  let h = host.toLowerCase();

  if (h.startsWith('[') || h.endsWith(']')) {
    if (!(h.startsWith('[') && h.endsWith(']'))) throw invalid(original, 'unbalanced brackets');
    h = h.slice(1, -1);
    if (!isIPv6(h)) throw invalid(original, 'brackets must hold an IPv6 address');
  }
  if (h.includes(':')) {
    if (!isIPv6(h)) throw invalid(original, "':' is only allowed in IPv6 addresses");
    return { type: 'ip', value: canonicalIPv6(h) };
  }

  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0) throw invalid(original, 'it is empty');
  if (parseIPv4(h)) return { type: 'ip', value: h };
  if (h.length > 253) throw invalid(original, 'it is longer than 253 characters');
  if (h.includes('..')) throw invalid(original, "it contains '..'");
  const labels = h.split('.');
  for (const label of labels) {
    if (label.length === 0) throw invalid(original, 'it has an empty label');
    if (label.length > 63) throw invalid(original, 'a label is longer than 63 characters');
    if (!LABEL.test(label)) {
      throw invalid(original, "labels may only hold a-z, 0-9, '-' and '_' and may not start or end with '-'");
    }
  }
  // A numeric last label makes URL parsers treat the name as an IPv4 address.
  if (/^(?:\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!)) {
    throw invalid(original, 'it looks like an IP address but is not a valid one');
  }
  return { type: 'dns', value: h };
}

/**
 * File name (without directory) for a host's cached leaf certificate. Only
 * ever called with the output of validateHostname, whose alphabet is
 * [a-z0-9._-] for names and [0-9a-f:.] for addresses; ':' becomes '_'.
 */
export function leafFileName(kind: HostKind): string {
  const base = kind.type === 'ip' ? kind.value.replace(/:/g, '_') : kind.value;
  if (!/^[a-z0-9._-]+$/.test(base) || base.startsWith('.')) {
    throw new CaError(`Refusing unsafe certificate cache file name for ${JSON.stringify(kind.value)}.`, 'internal');
  }
  // Windows opens a device for CON, NUL, AUX, PRN, COM1–9 and LPT1–9, whatever follows the first dot
  // (`con.example.com.pem` is the console): such names get a `+`, which no host name holds.
  return WINDOWS_DEVICE.test(base) ? `+${base}.pem` : `${base}.pem`;
}

const WINDOWS_DEVICE = /^(?:con|nul|aux|prn|com[1-9]|lpt[1-9])(?:\.|$)/;
