// Asserting on Airlock's typed errors.
import assert from 'node:assert/strict';
import { AirlockError } from '../../main/contract/errors';

/** Runs `fn`, asserts it throws an AirlockError, and returns its code. */
export function airlockErrorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AirlockError, `expected an AirlockError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a throw');
}

/** Awaits `fn`, asserts it rejects with an AirlockError, and returns its code. */
export async function airlockErrorCodeAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof AirlockError, `expected an AirlockError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a rejection');
}
