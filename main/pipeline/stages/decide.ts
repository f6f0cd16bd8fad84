import type { DecisionView } from '../../contract/views';
import type { Exchange } from '../../exchange/exchange';
import type { Stage } from '../stage';
import { gitKindOf } from './classify';

const HOLD_PUSH: DecisionView = {
  verdict: 'review',
  ruleId: 'builtin:hold-git-push',
  explanation: 'every git push is held until a reviewer approves it',
};
const ALLOW: DecisionView = {
  verdict: 'allow',
  ruleId: 'builtin:allow-other',
  explanation: 'requests other than a git push are allowed by default',
};
const DENY_SELF: DecisionView = {
  verdict: 'deny',
  ruleId: 'builtin:deny-airlock-itself',
  explanation: "agents cannot reach Airlock's own console or proxy through it (a person decides reviews)",
};

const DENY_UPSTREAM_PROXY: DecisionView = {
  verdict: 'deny',
  ruleId: 'builtin:deny-upstream-proxy',
  explanation: "agents cannot use Airlock's upstream proxy through it (a request through it would hide its real target from the policy)",
};

/** Airlock's upstream proxy (`upstreamProxy`), as the policy sees a target. */
export interface UpstreamProxyTarget {
  host: string;
  port: number;
}

/** What the audit log records as the policy in force (event `policy.loaded` at every start). */
export const BUILTIN_POLICY = {
  name: 'builtin',
  rules: [
    { id: DENY_SELF.ruleId, match: "Airlock's own proxy and console ports on this machine", verdict: DENY_SELF.verdict },
    { id: HOLD_PUSH.ruleId, match: 'POST …/git-receive-pack', verdict: HOLD_PUSH.verdict },
    { id: ALLOW.ruleId, match: 'anything else', verdict: ALLOW.verdict },
  ],
} as const;

/** The built-in policy's rules with an upstream proxy set: its address is refused to agents, after Airlock's own ports. */
export function builtinRules(upstreamProxy: UpstreamProxyTarget | null): ReadonlyArray<{ id: string; match: string; verdict: string }> {
  if (!upstreamProxy) return BUILTIN_POLICY.rules;
  const [self, ...rest] = BUILTIN_POLICY.rules;
  const h = upstreamProxy.host.includes(':') ? `[${upstreamProxy.host}]` : upstreamProxy.host;
  return [self, { id: DENY_UPSTREAM_PROXY.ruleId, match: `${h}:${upstreamProxy.port} (upstreamProxy)`, verdict: DENY_UPSTREAM_PROXY.verdict }, ...rest];
}

import { isLoopbackHost } from '../../gateway/this-machine';
export { isLoopbackHost };

/**
 * Step 2: allow, review or deny, with the rule that decided and a sentence
 * saying why. Until the policy language lands, the built-in policy refuses
 * requests to Airlock's own ports (an agent approving its own push through the
 * console API) and to its upstream proxy, holds every receive-pack POST and allows everything else.
 * `ownPorts` holds the ports Airlock listens on (proxy, console), read at each request.
 */
export function createDecideStage(ownPorts: ReadonlySet<number> = new Set(), upstreamProxy: UpstreamProxyTarget | null = null): Stage {
  const deniedTarget = targetDenial(ownPorts, upstreamProxy);
  return {
    name: 'policy',
    onRequest(ex) {
      ex.decision = deniedTarget(ex.host, ex.port) ?? (gitKindOf(ex) === 'git-push' ? HOLD_PUSH : ALLOW);
    },
  };
}

/**
 * The built-in rules that decide on the target alone (Airlock's own ports, its upstream proxy): the
 * policy stage applies them to each request, and the gateway asks them before it opens an early
 * connection for a CONNECT, so that a denied target is never connected to at all.
 */
export function targetDenial(ownPorts: ReadonlySet<number>, upstreamProxy: UpstreamProxyTarget | null): (host: string, port: number) => DecisionView | null {
  const proxyHost = upstreamProxy?.host.toLowerCase().replace(/\.$/, '');
  return (host, port) => (ownPorts.has(port) && isLoopbackHost(host) ? DENY_SELF
    : upstreamProxy !== null && port === upstreamProxy.port && host === proxyHost ? DENY_UPSTREAM_PROXY
    : null);
}
