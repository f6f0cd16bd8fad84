// AirlockClient over the Electron preload bridge (`window.airlock`).
import { API_METHODS, AirlockError, type AirlockClient, type ApiMethod } from '../../../main/contract';
import type { AirlockBridge } from '../../../preload/bridge';

export function createIpcClient(bridge: AirlockBridge): AirlockClient {
  const call = async (method: ApiMethod, arg: unknown): Promise<unknown> => {
    const r = await bridge.invoke(method, arg);
    if (r.ok) return r.value;
    throw new AirlockError(r.error.code, r.error.message);
  };
  const client = {} as Record<ApiMethod, (arg?: unknown) => Promise<unknown>>;
  for (const m of API_METHODS) client[m] = (arg?: unknown) => call(m, arg ?? {});
  return {
    ...(client as unknown as Omit<AirlockClient, 'subscribe'>),
    subscribe: (listener) => bridge.onEvent(listener),
  };
}
