// Error codes that cross the process boundary. Both transports serialize
// `{ code, message }`; the renderer maps codes to views.

export const ERROR_CODES = [
  'bad-request',
  'unauthorized',
  'not-found',
  'conflict', // e.g. a second decision on a review
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorPayload {
  code: ErrorCode;
  message: string;
}

export class AirlockError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly meta: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AirlockError';
  }

  toPayload(): ErrorPayload {
    return { code: this.code, message: this.message };
  }
}

export function isErrorPayload(x: unknown): x is ErrorPayload {
  return typeof x === 'object' && x !== null && typeof (x as ErrorPayload).code === 'string' &&
    typeof (x as ErrorPayload).message === 'string';
}
