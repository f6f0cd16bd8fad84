// The shape of `window.airlock`, shared (type-only) by the preload and the renderer.
// No imports with side effects: the renderer only imports types from here.
import type { AirlockEvent, ApiMethod, ErrorPayload } from '../main/contract';

/** What crosses IPC for one call: errors travel as data so their code survives. */
export type InvokeResult = { ok: true; value: unknown } | { ok: false; error: ErrorPayload };

export interface AirlockBridge {
  invoke(method: ApiMethod, arg?: unknown): Promise<InvokeResult>;
  /** Returns an unsubscribe function. */
  onEvent(listener: (event: AirlockEvent) => void): () => void;
}
