// The local record: one SQLite file (better-sqlite3). Plain Node; knows nothing of Electron or HTTP.
export { openStore } from './store';
export type {
  AgentRecord,
  AgentsRepo,
  AgentTokenInfo,
  AuditEvent,
  AuditLog,
  ExchangeRecord,
  ExchangesRepo,
  HeaderMap,
  ReviewEvent,
  ReviewPatch,
  ReviewRecord,
  ReviewsRepo,
  ReviewStateName,
  SessionRecord,
  SessionsRepo,
  Store,
  StoreOptions,
  VerifyResult,
} from './types';
export { AGENT_NAME_RE } from './agents';
export {
  canonicalEvent,
  exportAudit,
  formatAuditEvents,
  GENESIS_HASH,
  hashEvent,
  parseAuditExport,
  verifyEvents,
} from './audit';
export { canonicalJson } from './canonical-json';
export { maskHeaders, maskText, MASK, SENSITIVE_HEADERS } from './mask';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations';
export { INTERRUPTED_REASON } from './reviews';
