import { constants } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

/**
 * Options of every client-facing context. No TLS 1.2 renegotiation: a socket made with
 * `new TLSSocket(raw, { isServer })` (as the gateway makes them) does not get the
 * renegotiation limit `tls.createServer` installs (ERR_TLS_SESSION_ATTACK), so a client could make
 * the gateway do full handshakes on one connection for as long as it liked. HTTP/1.1 never
 * needs it; TLS 1.3 has no renegotiation at all.
 */
export const CLIENT_SECURE_OPTIONS = constants.SSL_OP_NO_RENEGOTIATION;

function clientContext(o: SecureContextOptions): SecureContext {
  return createSecureContext({ ...o, secureOptions: (o.secureOptions ?? 0) | CLIENT_SECURE_OPTIONS });
}

/**
 * Spare TLS contexts that already hold the shared leaf key, so that a new host
 * only costs its certificate: `createSecureContext({ key, cert })` takes about
 * 1 ms here, of which 0.6 ms (a new OpenSSL context and parsing the key) is the
 * same for every host. Spares are made when the gateway is idle (a timer after
 * the last use), never while a handshake waits.
 *
 * Setting the certificate of a context after the fact uses the native
 * `SecureContext.context.setCert`, the method `tls.createSecureContext` itself
 * calls on Node 18, 20, 22 and 24. Where it is missing, every context is made
 * the documented way (`createSecureContext({ key, cert })`), only slower.
 */
export class ContextPool {
  private readonly spare: SecureContext[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Counts for tests and benchmarks: contexts taken from the pool vs made on demand. */
  readonly stats = { pooled: 0, made: 0 };

  constructor(
    private readonly keyPem: string,
    private readonly size = 4,
    private readonly idleMs = 10,
  ) {}

  /** A context serving `certPem` with the shared key. */
  take(certPem: string): SecureContext {
    const ctx = this.spare.pop();
    this.schedule();
    if (ctx) {
      try {
        (ctx as unknown as NativeContext).context.setCert(certPem);
        this.stats.pooled++;
        return ctx;
      } catch {
        // fall through: the documented way reports a bad certificate clearly
      }
    }
    this.stats.made++;
    return clientContext({ key: this.keyPem, cert: certPem });
  }

  /** Makes the spares now (at start, before the first tunnel). */
  fill(): void {
    if (!supported()) return;
    while (!this.closed && this.spare.length < this.size) this.spare.push(clientContext({ key: this.keyPem }));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.spare.length = 0;
  }

  private schedule(): void {
    if (this.closed || !supported()) return;
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.fillOne();
      }, this.idleMs);
      this.timer.unref();
    }
  }

  private fillOne(): void {
    if (this.closed || this.spare.length >= this.size) return;
    this.spare.push(clientContext({ key: this.keyPem }));
    // One at a time, each in its own turn of the event loop.
    if (this.spare.length < this.size) setImmediate(() => this.fillOne()).unref();
  }
}

interface NativeContext {
  context: { setCert(pem: string): void };
}

let isSupported: boolean | undefined;
function supported(): boolean {
  isSupported ??= typeof (createSecureContext({}) as unknown as Partial<NativeContext>).context?.setCert === 'function';
  return isSupported;
}
