// The one typed interface between any UI and the Airlock core.
// Implemented once by `AirlockService` (main/service.ts); reached from the
// renderer through the preload bridge (Electron) or HTTP + SSE (web console).
import type { AgentView, AirlockEvent, AuditVerifyView, ExchangeView, ReviewState, ReviewView, StatusView } from './views';

export interface ListExchangesQuery {
  limit?: number;
  /** Only exchanges with an id lower than this (paging backwards in time). */
  before?: string;
}

export interface AirlockApi {
  getStatus(): Promise<StatusView>;
  listExchanges(query: ListExchangesQuery): Promise<ExchangeView[]>;
  listReviews(query: { state?: ReviewState }): Promise<ReviewView[]>;
  getReview(query: { id: string }): Promise<ReviewView>;
  approveReview(input: { id: string; reason?: string }): Promise<ReviewView>;
  denyReview(input: { id: string; reason: string }): Promise<ReviewView>;
  listAgents(): Promise<AgentView[]>;
  verifyAudit(): Promise<AuditVerifyView>;
}

/** Method names, as data: the IPC bridge and the HTTP console both register exactly these. */
export const API_METHODS = [
  'getStatus',
  'listExchanges',
  'listReviews',
  'getReview',
  'approveReview',
  'denyReview',
  'listAgents',
  'verifyAudit',
] as const satisfies readonly (keyof AirlockApi)[];

export type ApiMethod = (typeof API_METHODS)[number];

/** What a UI holds: the API plus a live event subscription. */
export interface AirlockClient extends AirlockApi {
  subscribe(listener: (event: AirlockEvent) => void): () => void;
}

/** The IPC channel names used by the Electron bridge. */
export const IPC_INVOKE_CHANNEL = 'airlock:invoke';
export const IPC_EVENT_CHANNEL = 'airlock:event';
