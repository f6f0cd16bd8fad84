import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { CertAuthority } from './ca';
import { writeFileAtomic } from './fsutil';

/** The Debian/Ubuntu/Alpine system store, included when present. */
export const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

function withNewline(s: string): string {
  return s.endsWith('\n') ? s : `${s}\n`;
}

/**
 * Writes `ca.paths.bundle`: Node's built-in roots, the system store (if
 * present) and the Airlock CA, for agents' `SSL_CERT_FILE` / `NODE_EXTRA_CA_CERTS`
 * / `curl --cacert`. Returns the bundle's path.
 */
export function writeTrustBundle(ca: CertAuthority): string {
  const parts: string[] = ['# Airlock trust bundle: public roots + the Airlock local CA\n'];
  parts.push(...rootCertificates.map(withNewline));
  if (existsSync(SYSTEM_CA_FILE)) {
    try {
      parts.push(withNewline(readFileSync(SYSTEM_CA_FILE, 'utf8')));
    } catch {
      // unreadable system store: Node's roots are still there
    }
  }
  parts.push(`# Airlock Local CA, SHA-256 ${ca.fingerprint256}\n`, withNewline(ca.certPem));
  writeFileAtomic(ca.paths.bundle, parts.join(''), 0o644);
  return ca.paths.bundle;
}
