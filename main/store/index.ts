// The local record: one SQLite file (better-sqlite3). Plain Node; knows nothing of Electron or HTTP.
// - Call store.close() on shutdown: exchange/session writes are batched (100 ms / 500 rows) and the timer is unref'd.
// - Timestamps are ISO strings from Date#toISOString(); lists sort and filter them as text.
// - The service calls reviews.markInterrupted(now) at startup; openStore only migrates.
export { openStore } from './store';
export type {
  AgentRecord,
  AgentsRepo,
  AgentTokenInfo,
  AuditEvent,
  AuditLog,
  ExchangeFilter,
  ExchangeRecord,
  ExchangesRepo,
  ExportQuery,
  HeaderMap,
  RecordHealth,
  ReviewEvent,
  ReviewPatch,
  ReviewRecord,
  ReviewsRepo,
  ReviewStateName,
  SessionRecord,
  SessionSummary,
  SessionsRepo,
  Store,
  StoreOptions,
  VerifyOptions,
  VerifyResult,
} from './types';
export { AGENT_NAME_RE } from './agents';
export { sessionView } from './exchanges';
export {
  canonicalEvent,
  exportAudit,
  formatAuditEvents,
  GENESIS_HASH,
  hashEvent,
  matchExports,
  parseAuditExport,
  parseHeadOption,
  verifyEvents,
  type ExportDigest,
} from './audit';
export { canonicalJson } from './canonical-json';
export { headerSecrets, maskHeaders, maskQuery, maskText, maskTextPre, MASK, normalizeSecrets, querySecrets, SENSITIVE_HEADERS } from './mask';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations';
export { INTERRUPTED_REASON } from './reviews';
export { FORWARD_UNKNOWN_REASON, FORWARD_UNKNOWN_RESULT, RESTORED_EXCHANGE_ERROR, type RecoveryInput, type RecoveryReport } from './recovery';
