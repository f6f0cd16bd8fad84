import { classifyGitRequest } from '../../git/smart-http';
import type { Exchange } from '../../exchange/exchange';
import type { Stage } from '../stage';

export type GitRequestKind = 'git-push' | 'git-push-advert' | 'git-fetch' | 'git-fetch-advert';

/** The finer git request kind (ref advertisement vs pack request) for stages that need it. */
const gitKinds = new WeakMap<Exchange, GitRequestKind>();
export function gitKindOf(ex: Exchange): GitRequestKind | null {
  return gitKinds.get(ex) ?? null;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Step 1: what is this? `git-push` (receive-pack advertisement and pack POST),
 * `git-fetch` (upload-pack), `http-api` (a write method, or JSON/GraphQL), `other`.
 */
export const classifyStage: Stage = {
  name: 'classify',
  onRequest(ex) {
    const git = classifyGitRequest(ex.method, ex.path, ex.requestHeaders['content-type']);
    if (git) {
      gitKinds.set(ex, git.kind);
      ex.kind = git.kind === 'git-push' || git.kind === 'git-push-advert' ? 'git-push' : 'git-fetch';
      ex.repoPath = git.repoPath;
      return;
    }
    const hints = String(ex.requestHeaders['content-type'] ?? '') + ' ' + String(ex.requestHeaders['accept'] ?? '');
    ex.kind = !READ_METHODS.has(ex.method) || /json|graphql/i.test(hints) ? 'http-api' : 'other';
  },
};
