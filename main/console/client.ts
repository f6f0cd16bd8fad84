// Node-side AirlockApi over the web console's HTTP API, for the CLI
// (`airlock reviews`, `airlock approve`) talking to a running gateway.
import { apiFromCall, callHttpApi, type AirlockApi } from '../contract';

export function createHttpApiClient(baseUrl: string, token: string): AirlockApi {
  const base = baseUrl.replace(/\/+$/, '');
  return apiFromCall((method, arg) => callHttpApi({
    base,
    token,
    init: () => ({ signal: AbortSignal.timeout(30_000) }),
    unreachable: (err) => `Cannot reach Airlock at ${base} (${(err as Error).message}).`,
  }, method, arg));
}
