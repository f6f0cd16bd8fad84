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

/** What the audit log records as the policy in force (event `policy.loaded` at every start). */
export const BUILTIN_POLICY = {
  name: 'builtin',
  rules: [
    { id: DENY_SELF.ruleId, match: "Airlock's own proxy and console ports on this machine", verdict: DENY_SELF.verdict },
    { id: HOLD_PUSH.ruleId, match: 'POST …/git-receive-pack', verdict: HOLD_PUSH.verdict },
    { id: ALLOW.ruleId, match: 'anything else', verdict: ALLOW.verdict },
  ],
} as const;

/** Host names and addresses that reach this machine's loopback listeners (validated, lower-case host names). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '0.0.0.0' ||
    host === '::1' || host === '::' || /^::ffff:(?:127\.|7f[0-9a-f]{2}:)/.test(host);
}

/**
 * Step 2: allow, review or deny, with the rule that decided and a sentence
 * saying why. Until the policy language lands, the built-in policy refuses
 * requests to Airlock's own ports (an agent approving its own push through the
 * console API), holds every receive-pack POST and allows everything else.
 * `ownPorts` holds the ports Airlock listens on (proxy, console), read at each request.
 */
export function createDecideStage(ownPorts: ReadonlySet<number> = new Set()): Stage {
  const isAirlockItself = (ex: Exchange): boolean => ownPorts.has(ex.port) && isLoopbackHost(ex.host);
  return {
    name: 'policy',
    onRequest(ex) {
      ex.decision = isAirlockItself(ex) ? DENY_SELF : gitKindOf(ex) === 'git-push' ? HOLD_PUSH : ALLOW;
    },
  };
}
