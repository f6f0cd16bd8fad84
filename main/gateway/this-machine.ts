// Which host names and addresses reach this machine's loopback listeners (where Airlock's own ports are).
// Decided on the parsed address, not on its spelling: IPv6 has many spellings of one address
// (`::ffff:0.0.0.0`, `0:0:0:0:0:ffff:0:0`, `::ffff:0:0`), and on Linux a connection to 0.0.0.0, or to
// its IPv4-mapped form, reaches a listener on 127.0.0.1.
import { isIP } from 'node:net';

/** 127.0.0.0/8, 0.0.0.0/8, `::`, `::1`, and the IPv4-mapped and IPv4-compatible forms of the first two. */
export function isThisMachineAddress(address: string): boolean {
  const v = isIP(address);
  if (v === 4) {
    const first = Number(address.slice(0, address.indexOf('.')));
    return first === 127 || first === 0;
  }
  if (v !== 6) return false;
  let c: string;
  try {
    c = new URL(`http://[${address}]`).hostname.slice(1, -1); // canonical: lower case, zeros compressed, dotted tail as hex
  } catch {
    return false; // a zone id (fe80::1%eth0): link-local, not loopback
  }
  if (c === '::' || c === '::1') return true;
  // ::ffff:a.b.c.d (mapped) or ::a.b.c.d (compatible, deprecated), as ::[ffff:]HHHH:HHHH or ::HHHH.
  const m = /^::(?:ffff:)?(?:([0-9a-f]{1,4}):)?([0-9a-f]{1,4})$/.exec(c);
  if (!m) return false;
  const first = m[1] === undefined ? 0 : parseInt(m[1], 16) >> 8;
  return first === 127 || first === 0;
}

/** A validated, lower-case host name or address that reaches this machine: `localhost`, `*.localhost`, or an address above. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || isThisMachineAddress(host);
}
