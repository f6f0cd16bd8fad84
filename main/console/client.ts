// Node-side AirlockApi over the web console's HTTP API, for the CLI
// (`airlock reviews`, `airlock approve`) talking to a running gateway.
import { API_METHODS, AirlockError, isErrorPayload, type AirlockApi, type ApiMethod } from '../contract';

export function createHttpApiClient(baseUrl: string, token: string): AirlockApi {
  const base = baseUrl.replace(/\/+$/, '');
  async function call(method: ApiMethod, arg: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${base}/api/${method}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify(arg ?? {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new AirlockError('unavailable', `Cannot reach Airlock at ${base} (${(err as Error).message}).`);
    }
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      throw new AirlockError('internal', `Airlock at ${base} answered ${res.status} with a body that is not JSON.`);
    }
    if (!res.ok) {
      if (isErrorPayload(body)) throw new AirlockError(body.code, body.message);
      throw new AirlockError('internal', `Airlock at ${base} answered HTTP ${res.status}.`);
    }
    return body;
  }
  const client = {} as Record<ApiMethod, (arg?: unknown) => Promise<unknown>>;
  for (const m of API_METHODS) client[m] = (arg?: unknown) => call(m, arg);
  return client as unknown as AirlockApi;
}
