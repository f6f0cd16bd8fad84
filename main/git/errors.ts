// Errors raised by the git protocol layer.
import { AirlockError } from '../contract/errors';

/**
 * The bytes on the wire do not follow the git smart-HTTP protocol (bad pkt-line,
 * bad command, corrupt pack...). The agent caused it, so it is a 'bad-request'.
 */
export class GitProtocolError extends AirlockError {
  constructor(message: string, meta: Record<string, unknown> = {}) {
    super('bad-request', message, meta);
    this.name = 'GitProtocolError';
  }
}

/** A `git` child process failed (non-accepted exit code, spawn failure or timeout). */
export class GitError extends Error {
  constructor(
    message: string,
    readonly args: string[],
    /** Exit code; -1 when the process could not be started or was killed. */
    readonly code: number,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'GitError';
  }
}

/**
 * Indexing or analysing a push needed objects that neither the pack nor the upstream cache
 * holds: the cache is behind upstream (refresh it with RemoteCache.ensure and retry), or the
 * push is broken.
 */
export class GitMissingObjectsError extends GitError {
  constructor(cause: GitError) {
    const detail = cause.message.replace(/^.*?: /, '');
    super(`The push needs objects the upstream cache does not have (${detail}); refresh the cache and analyse again.`,
      cause.args, cause.code, cause.stderr);
    this.name = 'GitMissingObjectsError';
  }
}

/**
 * The analysis cannot show what a push would land (an object it names is in neither the pack nor the
 * upstream cache). A push that cannot be shown in full is refused, never held for an approval made blind.
 */
export class PushNotShowableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PushNotShowableError';
  }
}
