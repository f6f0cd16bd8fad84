import { AirlockError, isErrorPayload, ERROR_CODES, type ErrorPayload } from '../contract';

/** Anything thrown by the service, as the wire payload. Unknown errors are not echoed. */
export function toErrorPayload(err: unknown): ErrorPayload {
  if (err instanceof AirlockError) return err.toPayload();
  if (err instanceof Error && err.name === 'AirlockError' && isErrorPayload(err) && (ERROR_CODES as readonly string[]).includes(err.code)) {
    return { code: err.code, message: err.message };
  }
  return { code: 'internal', message: 'Internal error in the Airlock service; see its log.' };
}
