import type { DecisionView } from '../../contract/views';
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

/** What the audit log records as the policy in force (event `policy.loaded` at every start). */
export const BUILTIN_POLICY = {
  name: 'builtin',
  rules: [
    { id: HOLD_PUSH.ruleId, match: 'POST …/git-receive-pack', verdict: HOLD_PUSH.verdict },
    { id: ALLOW.ruleId, match: 'anything else', verdict: ALLOW.verdict },
  ],
} as const;

/**
 * Step 2: allow, review or deny, with the rule that decided and a sentence
 * saying why. Until the policy language lands, the built-in policy holds every
 * receive-pack POST and allows everything else.
 */
export const decideStage: Stage = {
  name: 'policy',
  onRequest(ex) {
    ex.decision = gitKindOf(ex) === 'git-push' ? HOLD_PUSH : ALLOW;
  },
};
