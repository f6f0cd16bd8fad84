export function shortOid(oid: string): string {
  return /^0+$/.test(oid) ? '0000000' : oid.slice(0, 7);
}

export function shortRef(ref: string): string {
  return ref.replace(/^refs\/heads\//, '').replace(/^refs\/tags\//, 'tag ');
}

export function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i === -1 ? s : s.slice(0, i);
}

// One way to say a length of time, in the console and the CLI alike.
export { duration } from '../../../main/contract/views';
import { duration } from '../../../main/contract/views';

export function age(iso: string, now: number): string {
  return `${duration(now - Date.parse(iso))} ago`;
}

export function countdown(iso: string, now: number): string {
  const left = Date.parse(iso) - now;
  return left <= 0 ? 'expiring' : `expires in ${duration(left)}`;
}

export function bytes(n: number | null): string {
  if (n === null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

export function clockTime(iso: string): string {
  const d = new Date(iso);
  const p = (x: number, n = 2) => String(x).padStart(n, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function dateTime(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

export function ms(n: number | null): string {
  if (n === null) return '—';
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

/** host, or host:port when the port is not the scheme's default (IPv6 in brackets). */
export function hostPort(host: string, port: number, scheme: 'http' | 'https'): string {
  if (port === (scheme === 'https' ? 443 : 80)) return host;
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
