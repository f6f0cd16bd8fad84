// Picks the transport at boot: the Electron preload bridge when present, else HTTP.
import type { AirlockClient } from '../../../main/contract';
import type { AirlockBridge } from '../../../preload/bridge';
import { createIpcClient } from './ipc-client';
import { createHttpClient, takeToken } from './http-client';

declare global {
  interface Window {
    airlock?: AirlockBridge;
  }
}

export type Transport = 'ipc' | 'http';

export function pickClient(): { client: AirlockClient; transport: Transport } {
  if ('airlock' in window && window.airlock) return { client: createIpcClient(window.airlock), transport: 'ipc' };
  return { client: createHttpClient(takeToken()), transport: 'http' };
}
