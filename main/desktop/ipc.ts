// The one IPC handler: renderer -> AirlockClient. Only the trusted main window may
// call, only API_METHODS are dispatched, and errors travel as `{ code, message }`.
import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron';
import { API_METHODS, VIA_METHODS, IPC_EVENT_CHANNEL, IPC_INVOKE_CHANNEL, type AirlockClient, type AirlockEvent, type ApiMethod } from '../contract';
import type { InvokeResult } from '../../preload/bridge';
import { toErrorPayload } from '../console/errors';

const allowed: ReadonlySet<string> = new Set(API_METHODS);

export interface IpcOptions {
  ipcMain: Pick<IpcMain, 'handle' | 'removeHandler'>;
  service: AirlockClient;
  /** The trusted window's webContents (null while there is no window). */
  trusted: () => WebContents | null;
  /** file:// URL of the built renderer's index.html. */
  appUrl: string;
}

function stripHash(url: string): string {
  const i = url.indexOf('#');
  return i === -1 ? url : url.slice(0, i);
}

export function isTrustedSender(event: Pick<IpcMainInvokeEvent, 'sender' | 'senderFrame'>, trusted: WebContents | null, appUrl: string): boolean {
  if (!trusted || trusted.isDestroyed() || event.sender !== trusted) return false;
  const frame = event.senderFrame;
  // Only the top frame of our own page, never an iframe or a page navigated elsewhere.
  if (!frame || frame !== trusted.mainFrame) return false;
  return stripHash(frame.url) === stripHash(appUrl);
}

export function registerIpc(opts: IpcOptions): () => void {
  opts.ipcMain.handle(IPC_INVOKE_CHANNEL, async (event: IpcMainInvokeEvent, method: unknown, arg: unknown): Promise<InvokeResult> => {
    if (!isTrustedSender(event, opts.trusted(), opts.appUrl)) {
      return { ok: false, error: { code: 'unauthorized', message: 'IPC call from an untrusted frame was refused.' } };
    }
    if (typeof method !== 'string' || !allowed.has(method)) {
      return { ok: false, error: { code: 'bad-request', message: `Unknown API method "${String(method)}".` } };
    }
    // A decision (or an export) made in the app's window is recorded as made there, whatever the renderer sent.
    const input = VIA_METHODS.has(method) && (arg === undefined || arg === null || (typeof arg === 'object' && !Array.isArray(arg))) ? { ...(arg ?? {}), via: 'desktop' } : arg;
    try {
      const fn = opts.service[method as ApiMethod] as (a: unknown) => Promise<unknown>;
      const value = await fn.call(opts.service, input ?? {});
      return { ok: true, value };
    } catch (err) {
      const error = toErrorPayload(err);
      if (error.code === 'internal') console.error('[airlock ipc]', method, err);
      return { ok: false, error };
    }
  });
  return () => opts.ipcMain.removeHandler(IPC_INVOKE_CHANNEL);
}

/** Pushes every service event to the trusted window. Returns the unsubscribe. */
export function forwardEvents(service: AirlockClient, trusted: () => WebContents | null, extra?: (e: AirlockEvent) => void): () => void {
  return service.subscribe((event) => {
    const wc = trusted();
    if (wc && !wc.isDestroyed()) wc.send(IPC_EVENT_CHANNEL, event);
    extra?.(event);
  });
}
