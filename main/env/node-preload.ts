import { writeFileAtomic } from '../../certs/fsutil';
import { createRequire } from 'node:module';

/**
 * Node honours NODE_USE_ENV_PROXY only from 22.21 / 24.5 on. For older Node
 * `airlock env` adds `NODE_OPTIONS=--require <data-dir>/node-preload.cjs`: this
 * file routes `fetch` (undici's global dispatcher) and the `http`/`https`
 * global agents through HTTP(S)_PROXY. On Node that supports the variable it
 * does nothing, so the proxy is never applied twice.
 */
export function nodePreloadSource(undiciPath: string): string {
  return `'use strict';
// Written by Airlock. Routes this Node process's HTTP(S) traffic through HTTPS_PROXY/HTTP_PROXY.
(function airlockPreload() {
  const [maj, min] = process.versions.node.split('.').map(Number);
  const native = (maj === 22 && min >= 21) || (maj === 24 && min >= 5) || maj >= 25 || (maj === 23 && false);
  if (native && process.env.NODE_USE_ENV_PROXY === '1') return;
  const httpsProxy = process.env.HTTPS_PROXY || process.env.https_proxy;
  const httpProxy = process.env.HTTP_PROXY || process.env.http_proxy || httpsProxy;
  if (!httpsProxy && !httpProxy) return;
  const http = require('node:http');
  const https = require('node:https');
  const tls = require('node:tls');
  const noProxy = String(process.env.NO_PROXY || process.env.no_proxy || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bypass = (host) => noProxy.some((p) => p === '*' || host === p || (p.startsWith('.') ? host.endsWith(p) : host.endsWith('.' + p)));
  try {
    const undici = require(${JSON.stringify(undiciPath)});
    undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
  } catch (e) {
    process.emitWarning('Airlock preload could not route fetch through the proxy: ' + e.message);
  }
  function proxyAuth(u) {
    return u.username ? 'Basic ' + Buffer.from(decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password)).toString('base64') : null;
  }
  // Not \`agent: false\`: that builds an agent of http.globalAgent's class, which is replaced below.
  const plainAgent = new http.Agent({ keepAlive: false });
  if (httpsProxy) {
    const pu = new URL(httpsProxy);
    const auth = proxyAuth(pu);
    class TunnelAgent extends https.Agent {
      createConnection(options, cb) {
        const host = options.host || options.hostname || 'localhost';
        if (bypass(host)) return super.createConnection(options, cb);
        const port = options.port || 443;
        const headers = { host: host + ':' + port };
        if (auth) headers['proxy-authorization'] = auth;
        const req = http.request({ host: pu.hostname, port: pu.port || 80, method: 'CONNECT', path: (host.includes(':') ? '[' + host + ']' : host) + ':' + port, headers, agent: plainAgent });
        req.once('connect', (res, socket) => {
          if (res.statusCode !== 200) {
            socket.destroy();
            return cb(new Error('proxy refused CONNECT to ' + host + ':' + port + ': ' + res.statusCode + ' ' + res.statusMessage));
          }
          const t = tls.connect({ ...options, socket, servername: options.servername || (require('node:net').isIP(host) ? undefined : host) });
          cb(null, t);
        });
        req.once('error', (e) => cb(e));
        req.end();
      }
    }
    https.globalAgent = new TunnelAgent({ keepAlive: true });
  }
  if (httpProxy) {
    const pu = new URL(httpProxy);
    const auth = proxyAuth(pu);
    class ForwardAgent extends http.Agent {
      addRequest(req, options) {
        const host = options.host || options.hostname || 'localhost';
        if (!bypass(host)) {
          const port = options.port || 80;
          req.path = 'http://' + (host.includes(':') ? '[' + host + ']' : host) + (port == 80 ? '' : ':' + port) + req.path;
          if (auth) req.setHeader('proxy-authorization', auth);
          options = { ...options, host: pu.hostname, hostname: pu.hostname, port: Number(pu.port || 80) };
        }
        return super.addRequest(req, options);
      }
    }
    http.globalAgent = new ForwardAgent({ keepAlive: true });
  }
})();
`;
}

export function writeNodePreload(file: string): void {
  const require = createRequire(import.meta.url);
  // Atomic: a run starting meanwhile must never load a half-written preload.
  writeFileAtomic(file, nodePreloadSource(require.resolve('undici')), 0o644);
}
