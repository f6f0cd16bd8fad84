import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';
import { AirlockError } from '../contract/errors';

/**
 * Pooled, keep-alive upstream connections. TLS is always verified against the
 * system roots plus the extra CA files the user named; nothing here ever turns
 * verification off.
 */
export class UpstreamPool {
  readonly http: http.Agent;
  readonly https: https.Agent;
  readonly ca: string[];

  constructor(extraCaFiles: string[], readonly connectTimeoutMs: number) {
    const extra = extraCaFiles.map((f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch (e) {
        throw new AirlockError('bad-request', `cannot read upstream CA file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    });
    for (const [i, pem] of extra.entries()) {
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new AirlockError('bad-request', `upstream CA file ${extraCaFiles[i]} holds no PEM certificate`);
      }
    }
    this.ca = [...rootCertificates, ...extra];
    const common = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const, noDelay: true };
    this.http = new http.Agent(common);
    // A prebuilt secure context, not `ca`: https.Agent puts `ca` into the pool key string it
    // builds for every request (150 root certificates concatenated each time: 30% of CPU).
    this.https = new https.Agent({ ...common, secureContext: createSecureContext({ ca: this.ca }), rejectUnauthorized: true });
  }

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REVOKED', 'INVALID_CA', 'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
]);

/** Turns an upstream failure into the status and one plain sentence the agent sees. */
export function explainUpstreamError(err: NodeJS.ErrnoException, target: string, duringTls = false): { status: number; code: string; message: string } {
  const code = err.code ?? 'EUNKNOWN';
  if (TLS_VERIFY_CODES.has(code)) {
    return { status: 502, code: 'upstream-tls-unverified', message:
      `Airlock did not forward this request: the TLS certificate of ${target} could not be verified (${code}: ${err.message}). ` +
      'If this upstream uses a private CA, start Airlock with --upstream-ca FILE.' };
  }
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|unknown protocol/i.test(err.message)) {
    return { status: 502, code: 'upstream-not-tls', message: `Airlock could not open TLS to ${target}: it does not speak TLS on that port (${err.message}).` };
  }
  if (code === 'ECONNREFUSED') return { status: 502, code: 'upstream-refused', message: `Airlock could not connect to ${target}: connection refused.` };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { status: 502, code: 'upstream-dns', message: `Airlock could not resolve ${target} (${code}).` };
  if (code === 'ETIMEDOUT' || code === 'upstream-timeout') return { status: 504, code: 'upstream-timeout', message: `${target} did not answer in time.` };
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/.test(err.message)) {
    const hint = duringTls ? ' during the TLS handshake: it may not speak TLS on that port' : '';
    return { status: 502, code: 'upstream-reset', message: `${target} closed the connection before answering${hint} (${code}).` };
  }
  if (code === 'HPE_INVALID_CONSTANT' || code.startsWith('HPE_')) {
    return { status: 502, code: 'upstream-bad-response', message: `${target} sent a response that is not valid HTTP (${code}).` };
  }
  return { status: 502, code: 'upstream-error', message: `Airlock could not complete the request to ${target}: ${err.message} (${code}).` };
}
