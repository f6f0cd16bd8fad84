// AirlockClient over the web console: POST /api/<method> with a bearer token,
// events from an EventSource on /api/events. The token arrives once in the URL
// fragment (#token=…), is kept in sessionStorage and removed from the address bar.
import { API_METHODS, AirlockError, isErrorPayload, type AirlockClient, type AirlockEvent, type ApiMethod } from '../../../main/contract';

const TOKEN_KEY = 'airlock.consoleToken';

/** Takes `#token=…` out of the URL (into sessionStorage) and returns the token, if any. */
export function takeToken(): string | null {
  const m = /(?:^#|[#&])token=([^&]+)/.exec(window.location.hash);
  if (m) {
    const token = decodeURIComponent(m[1]!);
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      /* storage disabled: the token lives for this page only */
    }
    history.replaceState(null, '', `${window.location.pathname}${window.location.search}#/reviews`);
    return token;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function createHttpClient(token: string | null, base = ''): AirlockClient {
  const call = async (method: ApiMethod, arg: unknown): Promise<unknown> => {
    if (!token) throw new AirlockError('unauthorized', 'No console token: open the console with the URL printed by `airlock start` (it ends in #token=…).');
    let res: Response;
    try {
      res = await fetch(`${base}/api/${method}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify(arg ?? {}),
        cache: 'no-store',
      });
    } catch {
      throw new AirlockError('unavailable', 'Cannot reach the Airlock gateway; is it still running?');
    }
    const body: unknown = await res.json().catch(() => null);
    if (res.ok) return body;
    if (isErrorPayload(body)) throw new AirlockError(body.code, body.message);
    throw new AirlockError('internal', `The gateway answered HTTP ${res.status}.`);
  };

  const listeners = new Set<(e: AirlockEvent) => void>();
  let source: EventSource | null = null;
  const open = () => {
    if (source || !token) return;
    source = new EventSource(`${base}/api/events?token=${encodeURIComponent(token)}`);
    source.onmessage = (m: MessageEvent<string>) => {
      let event: AirlockEvent;
      try {
        event = JSON.parse(m.data) as AirlockEvent;
      } catch {
        return;
      }
      for (const l of [...listeners]) l(event);
    };
  };

  const client = {} as Record<ApiMethod, (arg?: unknown) => Promise<unknown>>;
  for (const m of API_METHODS) client[m] = (arg?: unknown) => call(m, arg);
  return {
    ...(client as unknown as Omit<AirlockClient, 'subscribe'>),
    subscribe(listener) {
      listeners.add(listener);
      open();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && source) {
          source.close();
          source = null;
        }
      };
    },
  };
}
