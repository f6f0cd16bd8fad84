import { AirlockError, type ErrorCode } from '../main/contract/errors';

/**
 * A problem with the local certificate authority or a host name handed to it.
 * The message is one sentence the user can act on (usually naming the file and
 * the fix `airlock ca rotate`). It is an AirlockError, so it crosses the
 * process boundary like every other user-facing error.
 */
export class CaError extends AirlockError {
  constructor(message: string, code: ErrorCode = 'unavailable', meta: Record<string, unknown> = {}) {
    super(code, message, meta);
    this.name = 'CaError';
  }
}

/** `EACCES`, `EISDIR`, ... or the error's message when it has no code. */
export function errnoOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}
