import type { Stage } from './stage';
import { classifyStage } from './stages/classify';
import { createDecideStage, type UpstreamProxyTarget } from './stages/decide';

/**
 * The data path, in order. Read this file to learn what happens to a request:
 *   record guard (refuses everything while the record cannot be written; added by the service)
 *   → classify (git push? fetch? API call?) → policy (allow / review / deny)
 *   → hold (git pushes wait for a reviewer; added by the service) → forward (the gateway) → record (onDone).
 */
export function defaultStages(extra: { guard?: Stage; hold?: Stage; record?: Stage; ownPorts?: ReadonlySet<number>; upstreamProxy?: UpstreamProxyTarget | null }): Stage[] {
  const stages: Stage[] = [];
  if (extra.guard) stages.push(extra.guard);
  stages.push(classifyStage, createDecideStage(extra.ownPorts, extra.upstreamProxy ?? null));
  if (extra.hold) stages.push(extra.hold);
  if (extra.record) stages.push(extra.record);
  return stages;
}
