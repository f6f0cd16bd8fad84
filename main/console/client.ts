// Node-side AirlockApi over the web console's HTTP API, for the CLI
// (`airlock reviews`, `airlock approve`) talking to a running gateway.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { AirlockError, apiFromCall, callHttpApi, CLIENT_HEADER, type AirlockApi, type AirlockEvent } from '../contract';
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

/**
 * The console's live events (`/api/events`, Server-Sent Events) for a Node client: `onEvent` for each one,
 * until `signal` aborts (resolves) or the stream ends (resolves with 'ended': the gateway stopped or cut
 * the stream). The console proves it holds the token before the token is sent, as for API calls.
 */
export async function followEvents(baseUrl: string, token: string, onEvent: (event: AirlockEvent) => void, signal: AbortSignal,
  onOpen: () => void | Promise<void> = () => {}): Promise<'aborted' | 'ended'> {
  const base = baseUrl.replace(/\/+$/, '');
  await prove(base, token);
  let res: Response;
  try {
    res = await fetch(`${base}/api/events`, { headers: { authorization: `Bearer ${token}`, [CLIENT_HEADER]: 'cli', accept: 'text/event-stream' }, signal });
  } catch (err) {
    if (signal.aborted) return 'aborted';
    throw new AirlockError('unavailable', `Cannot reach Airlock at ${base} (${(err as Error).message}).`);
  }
  if (!res.ok || !res.body) throw new AirlockError(res.status === 401 ? 'unauthorized' : 'unavailable', `The console at ${base} refused the event stream (HTTP ${res.status}).`);
  // Events that arrive meanwhile wait in the stream, read after it.
  await onOpen();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      // Events end with a blank line; a line starting with ':' is a comment (the server's pings).
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (!data) continue;
        let event: AirlockEvent;
        try {
          event = JSON.parse(data) as AirlockEvent;
        } catch {
          continue;
        }
        onEvent(event);
      }
    }
  } catch (err) {
    if (signal.aborted) return 'aborted';
    return 'ended';
  }
  return signal.aborted ? 'aborted' : 'ended';
}
