import { existsSync, readFileSync } from 'node:fs';
import tls, { rootCertificates } from 'node:tls';
import type { CertAuthority } from './ca';
import { writeFileAtomic } from './fsutil';

/**
 * Where operating systems keep their trust store as one PEM file; the first one present is read:
 * Debian/Ubuntu/Alpine/Arch, Fedora/RHEL, openSUSE, macOS (OpenSSL's copy; not the keychain).
 */
export const SYSTEM_CA_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
] as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates in a PEM text, each normalised to `-----BEGIN…` / `…END-----` with LF line ends. */
export function pemCertificates(text: string): string[] {
  return (text.match(PEM_CERT) ?? []).map((c) => c.replace(/\r\n/g, '\n'));
}

/** A certificate's base64 body: the same certificate with other line ends or framing compares equal. */
function certKey(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----|\s/g, '');
}

/** Certificates in order of first appearance, each once (compared by their base64 body). */
export function uniqueCertificates(certs: Iterable<string>): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const c of certs) {
    const key = certKey(c);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(c.trim());
  }
  return out;
}

export interface SystemTrustSource {
  /** Files of the operating system's store (default SYSTEM_CA_FILES; the first readable one counts). */
  files?: readonly string[];
  /** The environment whose NODE_EXTRA_CA_CERTS names more roots (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Certificates never returned, wherever they were found (the Airlock CA: a shell set up by `airlock env` names it in NODE_EXTRA_CA_CERTS). */
  distrust?: readonly string[];
  /** Default process.platform. On Windows the POSIX paths are not read (see `defaultSystemCaFiles`). */
  platform?: NodeJS.Platform;
}

/**
 * The store files read when none are named. None on Windows: `/etc/ssl/cert.pem` there means
 * `C:\etc\ssl\cert.pem`, a folder any local user may create, so a file planted there would be trusted
 * for every upstream and handed to every agent in the bundle. Windows's store is read by Node itself
 * (`getCACertificates('system')`) where Node can.
 */
export function defaultSystemCaFiles(platform: NodeJS.Platform = process.platform): readonly string[] {
  return platform === 'win32' ? [] : SYSTEM_CA_FILES;
}

/** Whether this Node reads the operating system's own store (macOS keychain, Windows store): Node ≥ 22.15 / 23.5. */
export function nodeReadsSystemStore(): boolean {
  return typeof (tls as { getCACertificates?: unknown }).getCACertificates === 'function';
}

/**
 * A warning for a platform whose store lives outside any PEM file (macOS keychain, Windows store)
 * when this Node cannot read it: a company root only there is then not trusted upstream. Null otherwise.
 */
export function systemStoreWarning(platform: NodeJS.Platform = process.platform, readsStore = nodeReadsSystemStore()): string | null {
  if (readsStore || (platform !== 'darwin' && platform !== 'win32')) return null;
  const store = platform === 'darwin' ? 'the macOS keychain' : 'the Windows certificate store';
  return `Node ${process.versions.node} cannot read ${store}: a root installed only there (a company or TLS-inspection CA) is not trusted for upstreams. ` +
    'Run Airlock on Node 22.15 or later, or name the root with --upstream-ca FILE.';
}

/**
 * The roots a direct connection from this machine would trust, beyond Node's built-in (Mozilla)
 * list: the operating system's store (a company CA, a TLS-inspecting corporate proxy's root) and
 * the file in NODE_EXTRA_CA_CERTS. Upstream TLS is verified against these plus Node's roots: an
 * explicit `ca` list replaces Node's default store, which would otherwise drop both. Where Node
 * can read the system store itself (`tls.getCACertificates('system')`, Node ≥ 22.15 / 23.5:
 * also the macOS keychain and the Windows store), that is added too.
 */
export function systemRoots(src: SystemTrustSource = {}): string[] {
  const certs: string[] = [];
  for (const file of src.files ?? defaultSystemCaFiles(src.platform)) {
    if (!existsSync(file)) continue;
    try {
      certs.push(...pemCertificates(readFileSync(file, 'utf8')));
      break;
    } catch {
      // unreadable: try the next one
    }
  }
  const getCa = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  if (src.files === undefined && typeof getCa === 'function') {
    try {
      certs.push(...getCa('system'));
    } catch {
      // not supported on this platform
    }
  }
  const extra = (src.env ?? process.env).NODE_EXTRA_CA_CERTS;
  if (extra) {
    try {
      certs.push(...pemCertificates(readFileSync(extra, 'utf8')));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS
    }
  }
  const never = new Set((src.distrust ?? []).flatMap(pemCertificates).map(certKey));
  return uniqueCertificates(certs).filter((c) => !never.has(certKey(c)));
}

/**
 * Writes `ca.paths.bundle`: Node's built-in roots, the system store (if present) and the Airlock
 * CA, each certificate once, for agents' `SSL_CERT_FILE` / `GIT_SSL_CAINFO` / `curl --cacert`.
 * Returns the bundle's path.
 */
export function writeTrustBundle(ca: CertAuthority, src: SystemTrustSource = {}): string {
  const roots = uniqueCertificates([...rootCertificates, ...systemRoots(src)]);
  const parts: string[] = ['# Airlock trust bundle: public and system roots + the Airlock local CA\n'];
  for (const c of roots) parts.push(`${c}\n`);
  parts.push(`# Airlock Local CA, SHA-256 ${ca.fingerprint256}\n`, `${ca.certPem.trim()}\n`);
  writeFileAtomic(ca.paths.bundle, parts.join(''), 0o644);
  return ca.paths.bundle;
}
