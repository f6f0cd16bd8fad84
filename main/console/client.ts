// Node-side AirlockApi over the web console's HTTP API, for the CLI
// (`airlock reviews`, `airlock approve`) talking to a running gateway.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { AirlockError, apiFromCall, callHttpApi, CLIENT_HEADER, type AirlockApi } from '../contract';
import { consoleProof } from './server';

/**
 * The API of the console at `baseUrl`. Before the admin token is first sent, the console proves that
 * it holds that token (`/api/prove`): runtime.json may be stale, and whatever listens on its port now
 * must not receive the token.
 */
export function createHttpApiClient(baseUrl: string, token: string): AirlockApi {
  const base = baseUrl.replace(/\/+$/, '');
  let proven: Promise<void> | null = null;
  return apiFromCall(async (method, arg) => {
    await (proven ??= prove(base, token));
    return callHttpApi({
      base,
      token,
      init: () => ({ signal: AbortSignal.timeout(30_000) }),
      headers: { [CLIENT_HEADER]: 'cli' },
      unreachable: (err) => `Cannot reach Airlock at ${base} (${(err as Error).message}).`,
    }, method, arg);
  });
}

async function prove(base: string, token: string): Promise<void> {
  const challenge = randomBytes(32).toString('hex');
  const notOurs = (why: string) => new AirlockError('unavailable',
    `the process at ${base} is not this data directory's Airlock gateway (${why}); the admin token was not sent. Is runtime.json stale? Start the gateway again with \`airlock serve\`.`);
  let res: Response;
  try {
    res = await fetch(`${base}/api/prove?challenge=${challenge}`, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new AirlockError('unavailable', `Cannot reach Airlock at ${base} (${(err as Error).message}).`);
  }
  let proof: unknown;
  try {
    proof = ((await res.json()) as { proof?: unknown }).proof;
  } catch {
    throw notOurs(`it answered ${res.status} without a proof`);
  }
  const want = Buffer.from(consoleProof(token, Number(new URL(base).port), challenge));
  if (typeof proof !== 'string' || proof.length !== want.length || !timingSafeEqual(Buffer.from(proof), want)) throw notOurs('its proof is wrong');
}
