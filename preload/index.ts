// Preload (sandboxed, CommonJS): exposes exactly `window.airlock = { invoke, onEvent }`.
// No ipcRenderer, no Node: only the API method names in API_METHODS are forwarded.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { API_METHODS, IPC_EVENT_CHANNEL, IPC_INVOKE_CHANNEL, type AirlockEvent, type ApiMethod } from '../main/contract';
import type { AirlockBridge, InvokeResult } from './bridge';

const allowed: ReadonlySet<string> = new Set(API_METHODS);

const bridge: AirlockBridge = {
  invoke(method: ApiMethod, arg?: unknown): Promise<InvokeResult> {
    if (typeof method !== 'string' || !allowed.has(method)) {
      return Promise.resolve({ ok: false, error: { code: 'bad-request', message: `Unknown API method "${String(method)}".` } });
    }
    return ipcRenderer.invoke(IPC_INVOKE_CHANNEL, method, arg) as Promise<InvokeResult>;
  },
  onEvent(listener: (event: AirlockEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('onEvent needs a function');
    // Never hand the IpcRendererEvent (it carries `sender`) to the page.
    const handler = (_e: IpcRendererEvent, event: AirlockEvent) => listener(event);
    ipcRenderer.on(IPC_EVENT_CHANNEL, handler);
    return () => {
      ipcRenderer.removeListener(IPC_EVENT_CHANNEL, handler);
    };
  },
};

contextBridge.exposeInMainWorld('airlock', bridge);
