// AirlockClient over the web console: POST /api/<method> with a bearer token,
// events from an EventSource on /api/events. The token arrives once in the URL
// fragment (#token=…), is kept in sessionStorage and removed from the address bar.
import { AirlockError, apiFromCall, callHttpApi, type AirlockClient, type AirlockEvent, type ApiMethod } from '../../../main/contract';

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
    if (!token) throw new AirlockError('unauthorized', 'No console token: open the console with the URL that `airlock status` prints (it ends in #token=…).');
    return callHttpApi({
      base,
      token,
      init: () => ({ cache: 'no-store' }),
      unreachable: () => 'Cannot reach the Airlock gateway; is it still running?',
    }, method, arg);
  };

  const listeners = new Set<(e: AirlockEvent) => void>();
  let source: EventSource | null = null;
  const open = () => {
    if (source || !token) return;
    source = new EventSource(`${base}/api/events?token=${encodeURIComponent(token)}`);
    // EventSource reconnects by itself after an error; whatever happened meanwhile was not seen.
    let cut = false;
    source.onerror = () => { cut = true; };
    source.onopen = () => {
      if (!cut) return;
      cut = false;
      for (const l of [...listeners]) l({ type: 'resync' });
    };
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

  return {
    ...apiFromCall(call),
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
