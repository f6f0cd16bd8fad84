// The one way to call the AirlockApi over HTTP (`POST /api/<method>` with a
// bearer token), shared by the CLI (Node) and the web console (browser): both
// have a global fetch. No Node imports.
import { API_METHODS, type AirlockApi, type ApiMethod } from './api';
import { AirlockError, isErrorPayload } from './errors';

export interface HttpApiOptions {
  /** '' (same origin, browser) or an absolute URL such as http://127.0.0.1:8898. */
  base: string;
  token: string;
  /** Added to every fetch (e.g. a timeout signal, `cache: 'no-store'`). */
  init?: () => RequestInit;
  /** The sentence used when the gateway cannot be reached. */
  unreachable?: (err: unknown) => string;
  /** Sent with every call (the CLI names itself, so that its decisions are recorded as made there). */
  headers?: Record<string, string>;
}

export async function callHttpApi(o: HttpApiOptions, method: ApiMethod, arg: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${o.base}/api/${method}`, {
      ...(o.init?.() ?? {}),
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${o.token}`, ...o.headers },
      body: JSON.stringify(arg ?? {}),
    });
  } catch (err) {
    throw new AirlockError('unavailable', o.unreachable?.(err) ?? `Cannot reach Airlock at ${o.base || 'this address'}.`);
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new AirlockError('internal', `Airlock answered HTTP ${res.status} with a body that is not JSON.`);
  }
  if (res.ok) return body;
  if (isErrorPayload(body)) throw new AirlockError(body.code, body.message);
  throw new AirlockError('internal', `Airlock answered HTTP ${res.status}.`);
}

/** Every API method as a function over `call`. */
export function apiFromCall(call: (method: ApiMethod, arg: unknown) => Promise<unknown>): AirlockApi {
  const client = {} as Record<ApiMethod, (arg?: unknown) => Promise<unknown>>;
  for (const m of API_METHODS) client[m] = (arg?: unknown) => call(m, arg);
  return client as unknown as AirlockApi;
}
