import type { Exchange } from '../exchange/exchange';
import type { RequestIO, Stage } from './stage';

export type PipelineOutcome =
  | { action: 'forward' }
  | { action: 'handled' }
  | { action: 'refuse'; status: number; message: string };

function isPromise<T>(x: unknown): x is Promise<T> {
  return typeof x === 'object' && x !== null && typeof (x as Promise<T>).then === 'function';
}

/**
 * Runs the stages' `onRequest` in order. Fails closed: a stage that throws
 * refuses the exchange; a verdict other than allow that no stage handled is
 * refused too. Stays synchronous while every stage is (the hot path).
 */
export function runRequestStages(stages: readonly Stage[], ex: Exchange, io: RequestIO): PipelineOutcome | Promise<PipelineOutcome> {
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    if (!stage.onRequest) continue;
    let r;
    try {
      r = stage.onRequest(ex, io);
    } catch (e) {
      return failed(stage, e);
    }
    if (isPromise(r)) return continueAsync(stages, i, r, ex, io);
    if (r === 'handled') return { action: 'handled' };
  }
  return finalVerdict(ex);
}

/**
 * Runs the stages and hands their outcome to `then`: at once while every stage is synchronous (the
 * hot path), else when the last one settles. Never throws: a failure anywhere is a 500 refusal.
 */
export function decideRequest(stages: readonly Stage[], ex: Exchange, io: RequestIO, then: (o: PipelineOutcome) => void): void {
  let outcome: PipelineOutcome | Promise<PipelineOutcome>;
  try {
    outcome = runRequestStages(stages, ex, io);
  } catch (e) {
    outcome = { action: 'refuse', status: 500, message: `Airlock refused the request: ${(e as Error).message}` };
  }
  if (isPromise<PipelineOutcome>(outcome)) outcome.then(then, (e: Error) => then({ action: 'refuse', status: 500, message: e.message }));
  else then(outcome);
}

async function continueAsync(stages: readonly Stage[], i: number, pending: Promise<unknown>, ex: Exchange, io: RequestIO): Promise<PipelineOutcome> {
  try {
    if ((await pending) === 'handled') return { action: 'handled' };
  } catch (e) {
    return failed(stages[i]!, e);
  }
  for (let j = i + 1; j < stages.length; j++) {
    const stage = stages[j]!;
    if (!stage.onRequest) continue;
    try {
      if ((await stage.onRequest(ex, io)) === 'handled') return { action: 'handled' };
    } catch (e) {
      return failed(stage, e);
    }
  }
  return finalVerdict(ex);
}

function failed(stage: Stage, e: unknown): PipelineOutcome {
  return { action: 'refuse', status: 500, message: `Airlock refused the request because its ${stage.name} step failed: ${(e as Error)?.message ?? String(e)}` };
}

function finalVerdict(ex: Exchange): PipelineOutcome {
  const d = ex.decision;
  if (!d) return { action: 'refuse', status: 500, message: 'Airlock refused the request: no policy decision was made.' };
  if (d.verdict === 'allow') return { action: 'forward' };
  if (d.verdict === 'deny') return { action: 'refuse', status: 403, message: `Airlock denied this request: ${d.explanation}` };
  return { action: 'refuse', status: 403, message: `Airlock refused this request: it needs review but no review step handled it (${d.explanation}).` };
}

export function runDoneStages(stages: readonly Stage[], ex: Exchange, onError: (stage: Stage, e: unknown) => void): void {
  for (const stage of stages) {
    if (!stage.onDone) continue;
    try {
      stage.onDone(ex);
    } catch (e) {
      onError(stage, e);
    }
  }
}
