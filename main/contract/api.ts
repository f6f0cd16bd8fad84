// The one typed interface between any UI and the Airlock core.
// Implemented once by `AirlockService` (main/service.ts); reached from the
// renderer through the preload bridge (Electron) or HTTP + SSE (web console).
import type {
  AgentView, AirlockEvent, AuditVerifyView, ExchangeDetailView, HarExportView, ExchangeKind, ExchangeView, ReviewState, ReviewView, SessionView, StatusView, Verdict,
} from './views';

/** Most rows one list call returns; a larger `limit` is lowered to this. */
export const MAX_LIST_LIMIT = 1000;

/**
 * Exchanges, newest first (by id). Filters combine with AND; an absent or empty filter matches everything.
 * Any other key is refused ('bad-request'), so a misspelled filter never silently lists everything.
 */
export interface ListExchangesQuery {
  /** Rows per page: a whole number ≥ 1 (default 200, at most MAX_LIST_LIMIT). */
  limit?: number;
  /** Only exchanges with an id lower than this: the id of the last row of the previous page (paging backwards in time). */
  before?: string;
  /** Only this agent's exchanges. */
  agent?: string;
  /** Only exchanges to this host (exact, as recorded: lower-case name or IP, no port). */
  host?: string;
  kind?: ExchangeKind;
  /** Only exchanges whose policy decision has this verdict (`ExchangeView.decision.verdict`); exchanges without a decision never match. */
  decision?: Verdict;
  /** Only exchanges of this session (`SessionView.id`). */
  sessionId?: string;
}

/** Sessions (one per agent connection), newest first. Any other key is refused ('bad-request'). */
export interface ListSessionsQuery {
  /** Only this agent's sessions. */
  agent?: string;
  /** Rows per page: a whole number ≥ 1 (default 100, at most MAX_LIST_LIMIT). */
  limit?: number;
  /** The id of the last session of the previous page; an unknown id is 'not-found'. */
  before?: string;
}

export interface AirlockApi {
  getStatus(): Promise<StatusView>;
  listExchanges(query: ListExchangesQuery): Promise<ExchangeView[]>;
  listSessions(query: ListSessionsQuery): Promise<SessionView[]>;
  /** One exchange in full: headers and bodies as text where they are text (64 KiB each at most). */
  getExchange(query: { id: string }): Promise<ExchangeDetailView>;
  listReviews(query: { state?: ReviewState }): Promise<ReviewView[]>;
  getReview(query: { id: string }): Promise<ReviewView>;
  /**
   * `via` is the channel the decision came through, recorded with it: set by the transport (the
   * console server, the desktop's IPC handler), which overrides whatever a caller put there.
   */
  approveReview(input: { id: string; reason?: string; via?: DecisionChannel }): Promise<ReviewView>;
  denyReview(input: { id: string; reason: string; via?: DecisionChannel }): Promise<ReviewView>;
  listAgents(): Promise<AgentView[]>;
  /**
   * The audit chain from seq 1. With `head` (a hash kept from an earlier verify or export, outside this
   * machine), also that the log still holds it: a chain verifies on its own with its end cut off.
   */
  verifyAudit(query?: { head?: string }): Promise<AuditVerifyView>;
  /**
   * The exchanges of one session, or of one agent, or started since a time (filters combine with AND), with
   * headers and bodies as HAR 1.2 for the UI to save. Audited (`exchanges.exported`, with the channel in
   * `via`, set by the transport). Refused past HAR_EXPORT_MAX_BYTES: `airlock exchanges export --format har`
   * writes any size to a file.
   */
  exportHar(query: ExportHarQuery): Promise<HarExportView>;
}

/** What `exportHar` exports. Any other key is refused ('bad-request'). */
export interface ExportHarQuery {
  sessionId?: string;
  agent?: string;
  /** An ISO time: exchanges started at or after it. */
  since?: string;
  via?: DecisionChannel;
}

/** The largest HAR `exportHar` returns (the CLI writes larger ones to a file). */
export const HAR_EXPORT_MAX_BYTES = 32 * 1024 * 1024;

/** The ways a person's decision on a review reaches Airlock, recorded with it. */
export const DECISION_CHANNELS = ['cli', 'web console', 'desktop'] as const;
export type DecisionChannel = (typeof DECISION_CHANNELS)[number];
/** The methods whose `via` (the channel a person used: a decision, an export) is set by the transport. */
export const VIA_METHODS: ReadonlySet<string> = new Set(['approveReview', 'denyReview', 'exportHar']);
/** Header the CLI's console client sends so that its decisions are recorded as made through the CLI. */
export const CLIENT_HEADER = 'x-airlock-client';

/** Method names, as data: the IPC bridge and the HTTP console both register exactly these. */
export const API_METHODS = [
  'getStatus',
  'listExchanges',
  'listSessions',
  'getExchange',
  'listReviews',
  'getReview',
  'approveReview',
  'denyReview',
  'listAgents',
  'verifyAudit',
  'exportHar',
] as const satisfies readonly (keyof AirlockApi)[];

export type ApiMethod = (typeof API_METHODS)[number];

/** What a UI holds: the API plus a live event subscription. */
export interface AirlockClient extends AirlockApi {
  subscribe(listener: (event: AirlockEvent) => void): () => void;
}

/** The IPC channel names used by the Electron bridge. */
export const IPC_INVOKE_CHANNEL = 'airlock:invoke';
export const IPC_EVENT_CHANNEL = 'airlock:event';
