import net, { BlockList, isIP } from 'node:net';
import { AirlockError } from '../contract/errors';

/**
 * The proxy Airlock's own upstream connections go through (`upstreamProxy`), for networks where
 * nothing reaches the internet directly. HTTPS and WebSocket targets go through a CONNECT tunnel,
 * inside which Airlock still opens and verifies TLS with the origin itself: the upstream proxy
 * sees a host name and encrypted bytes. Plain HTTP goes as an absolute-form request. Hosts that
 * match `noProxy` are reached directly. Only `http://` proxies (the kind corporate networks run);
 * credentials in the URL are sent as Basic `Proxy-Authorization` and never shown.
 */
export class UpstreamProxy {
  /** `host:port` of the proxy, for messages (never the credentials). */
  readonly display: string;
  readonly host: string;
  readonly port: number;
  /** `Proxy-Authorization` value, or null. */
  readonly authorization: string | null;
  /** The password in the URL (decoded), or ''. */
  private readonly password: string;
  readonly noProxy: readonly string[];
  private bypassAll = false;
  private readonly names: string[] = [];
  private readonly addresses = new BlockList();

  constructor(private readonly url: string, noProxy: readonly string[]) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new AirlockError('bad-request', `upstreamProxy: '${redact(url)}' is not a URL (expected http://HOST:PORT)`);
    }
    if (u.protocol !== 'http:') {
      throw new AirlockError('bad-request', `upstreamProxy: ${u.protocol}// proxies are not supported; give the proxy's http:// address (HTTPS still runs end to end through it)`);
    }
    if (!u.hostname || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      throw new AirlockError('bad-request', `upstreamProxy: expected http://[USER:PASSWORD@]HOST:PORT, got '${redact(url)}'`);
    }
    this.host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = u.port ? Number(u.port) : 80;
    this.display = `${u.hostname}:${this.port}`;
    this.password = decodeURIComponent(u.password);
    this.authorization = u.username || u.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${this.password}`).toString('base64')}`
      : null;
    this.noProxy = [...noProxy];
    for (const raw of noProxy) {
      const e = raw.trim().toLowerCase();
      const bare = e.replace(/^\[(.*)\]$/, '$1');
      if (e === '*') this.bypassAll = true;
      if (!e || e === '*') continue;
      const slash = e.indexOf('/');
      if (slash >= 0) {
        const addr = e.slice(0, slash);
        const prefix = Number(e.slice(slash + 1));
        const family = isIP(addr);
        if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
          throw new AirlockError('bad-request', `upstreamNoProxy: '${raw}' is not an address range (e.g. 10.0.0.0/8)`);
        }
        this.addresses.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
      } else if (isIP(bare)) {
        this.addresses.addAddress(bare, isIP(bare) === 4 ? 'ipv4' : 'ipv6');
      } else {
        this.names.push(e.replace(/^\*?\./, ''));
      }
    }
  }

  /** True when `host` is reached directly (it matches `noProxy`: a name or its subdomains, an address, a range). */
  bypass(host: string): boolean {
    if (this.bypassAll) return true;
    const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
    const family = isIP(h);
    if (family) return this.addresses.check(h, family === 4 ? 'ipv4' : 'ipv6');
    return this.names.some((n) => h === n || h.endsWith(`.${n}`));
  }

  /** What the record masks wherever it appears, as it masks a stored credential: the password, its Basic forms. */
  secrets(): string[] {
    if (!this.password || !this.authorization) return [];
    return [this.password, this.authorization.slice('Basic '.length), this.authorization];
  }

  /** The proxy's URL with its credentials, for git's `http.proxy` (passed in the environment, never on a command line). */
  urlWithCredentials(): string {
    return this.url;
  }

  /** Builds one from the options; null when no upstream proxy is set. */
  static from(url: string | null | undefined, noProxy: readonly string[]): UpstreamProxy | null {
    return url ? new UpstreamProxy(url, noProxy) : null;
  }

  /** Whether the proxy accepts a TCP connection: null, or the reason it does not (an errno code, or 'timeout'). */
  probe(timeoutMs: number): Promise<string | null> {
    return new Promise((resolve) => {
      const sock = net.connect({ host: this.host, port: this.port });
      const done = (why: string | null) => {
        clearTimeout(timer);
        sock.destroy();
        resolve(why);
      };
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      timer.unref();
      sock.once('connect', () => done(null));
      sock.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    });
  }

  /**
   * Opens a tunnel to `host:port` through the proxy: TCP to the proxy, `CONNECT`, its `200`.
   * `cb` gets the socket positioned after the proxy's answer, or an error whose code is
   * `EUPSTREAMPROXY` and whose message is the sentence the agent sees. Bounded by `timeoutMs`.
   */
  tunnel(host: string, port: number, timeoutMs: number, cb: (err: NodeJS.ErrnoException | null, socket?: net.Socket) => void): void {
    const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    let done = false;
    const sock = net.connect({ host: this.host, port: this.port });
    sock.setNoDelay(true);
    const finish = (err: NodeJS.ErrnoException | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.removeListener('error', onError);
      sock.removeListener('close', onClose);
      if (err) {
        sock.destroy();
        cb(err);
      } else cb(null, sock);
    };
    const fail = (message: string, cause?: string, status = 502) => finish(Object.assign(new Error(message), { code: 'EUPSTREAMPROXY', cause, status }));
    const timer = setTimeout(() => fail(`Airlock's upstream proxy ${this.display} did not open a tunnel to ${authority} within ${timeoutMs / 1000} s (Airlock's connectTimeoutMs setting).`, 'ETIMEDOUT', 504), timeoutMs);
    const onError = (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? 'its name does not resolve' : e.message;
      fail(`Airlock could not reach its upstream proxy ${this.display} (${why}${e.code ? `, ${e.code}` : ''}).`, e.code);
    };
    const onClose = () => fail(`Airlock's upstream proxy ${this.display} closed the connection instead of opening a tunnel to ${authority}.`);
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16 * 1024) fail(`Airlock's upstream proxy ${this.display} sent an answer to CONNECT that is not HTTP.`);
        return;
      }
      const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
      if (!m) return fail(`Airlock's upstream proxy ${this.display} sent an answer to CONNECT that is not HTTP.`);
      const status = Number(m[1]);
      if (status < 200 || status > 299) {
        const reason = (m[2] ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 100);
        const hint = status === 407 ? (this.authorization ? ': it did not accept the credentials in upstreamProxy' : ': it wants credentials (http://USER:PASSWORD@HOST:PORT in upstreamProxy)') : '';
        return fail(`Airlock's upstream proxy ${this.display} refused a tunnel to ${authority}: ${status}${reason ? ` ${reason}` : ''}${hint}.`, String(status));
      }
      const rest = head.subarray(end + 4);
      if (rest.length) sock.unshift(rest);
      finish(null);
    };
    sock.on('error', onError);
    sock.on('close', onClose);
    sock.once('connect', () => {
      sock.on('data', onData);
      sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n` +
        (this.authorization ? `Proxy-Authorization: ${this.authorization}\r\n` : '') + '\r\n');
    });
  }
}

/** A URL for a message: its password replaced. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
