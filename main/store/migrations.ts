// Versioned schema. MIGRATIONS[i] moves the database from user_version i to i + 1.
// Append new entries; never edit one that has shipped.
import type Database from 'better-sqlite3';
import { AirlockError } from '../contract/errors';

export const MIGRATIONS: readonly string[] = [
  // 1: initial schema
  `
  CREATE TABLE agents (
    name        TEXT PRIMARY KEY,
    groups_json TEXT NOT NULL,
    created_at  TEXT NOT NULL
  );

  CREATE TABLE agent_tokens (
    hash       TEXT PRIMARY KEY,
    agent      TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
  );
  CREATE INDEX agent_tokens_agent ON agent_tokens(agent);

  CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    agent          TEXT NOT NULL,
    client_address TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    ended_at       TEXT
  );
  CREATE INDEX sessions_agent_started ON sessions(agent, started_at);

  CREATE TABLE exchanges (
    id                     TEXT PRIMARY KEY,
    session_id             TEXT,
    agent                  TEXT NOT NULL,
    started_at             TEXT NOT NULL,
    ended_at               TEXT,
    method                 TEXT NOT NULL,
    scheme                 TEXT NOT NULL,
    host                   TEXT NOT NULL,
    port                   INTEGER NOT NULL,
    path                   TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    verdict                TEXT,
    rule_id                TEXT,
    explanation            TEXT,
    status                 INTEGER,
    error                  TEXT,
    request_bytes          INTEGER NOT NULL,
    response_bytes         INTEGER NOT NULL,
    connect_ms             REAL,
    tls_ms                 REAL,
    upstream_ms            REAL,
    total_ms               REAL,
    request_headers        TEXT NOT NULL,
    response_headers       TEXT,
    request_body_complete  INTEGER NOT NULL,
    response_body_complete INTEGER NOT NULL,
    request_body_sha256    TEXT,
    response_body_sha256   TEXT,
    review_id              TEXT
  );
  CREATE INDEX exchanges_started ON exchanges(started_at, id);
  CREATE INDEX exchanges_agent_started ON exchanges(agent, started_at);
  CREATE INDEX exchanges_session ON exchanges(session_id);
  CREATE INDEX exchanges_review ON exchanges(review_id) WHERE review_id IS NOT NULL;

  CREATE TABLE exchange_bodies (
    exchange_id TEXT NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
    direction   TEXT NOT NULL CHECK (direction IN ('request', 'response')),
    body        BLOB NOT NULL,
    PRIMARY KEY (exchange_id, direction)
  );

  CREATE TABLE reviews (
    id              TEXT PRIMARY KEY,
    exchange_id     TEXT NOT NULL,
    agent           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    host            TEXT NOT NULL,
    repo            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'interrupted')),
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    decided_at      TEXT,
    decided_by      TEXT,
    reason          TEXT,
    body_sha256     TEXT NOT NULL,
    body_bytes      INTEGER NOT NULL,
    body_path       TEXT,
    summary         TEXT NOT NULL,
    detail_json     TEXT NOT NULL,
    upstream_status INTEGER
  );
  CREATE INDEX reviews_state_created ON reviews(state, created_at);
  CREATE INDEX reviews_created ON reviews(created_at);
  CREATE INDEX reviews_exchange ON reviews(exchange_id);

  CREATE TABLE review_events (
    id        INTEGER PRIMARY KEY,
    review_id TEXT NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    reason    TEXT
  );
  CREATE INDEX review_events_review ON review_events(review_id, id);

  CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
  );
  CREATE INDEX audit_events_at ON audit_events(at);
  CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
  CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
  `,
  // 2: exchanges keyed by an integer id in start order (a rowid table: no separate key index, appends at the
  // right edge), bodies inline (one row write per exchange), one index per filter the session view offers
  // (agent, host, classification, decision, session), each ending in id so a filtered page is an index range.
  // Ids come from `counters` in blocks, so two processes never hand out the same one and pruning never
  // lets an id be reused. Existing rows are renumbered in start order; reviews follow their exchange.
  `
  CREATE TABLE exchanges_v2 (
    id                     INTEGER PRIMARY KEY,
    session_id             TEXT,
    agent                  TEXT NOT NULL,
    started_at             TEXT NOT NULL,
    ended_at               TEXT,
    method                 TEXT NOT NULL,
    scheme                 TEXT NOT NULL,
    host                   TEXT NOT NULL,
    port                   INTEGER NOT NULL,
    path                   TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    verdict                TEXT,
    rule_id                TEXT,
    explanation            TEXT,
    status                 INTEGER,
    error                  TEXT,
    request_bytes          INTEGER NOT NULL,
    response_bytes         INTEGER NOT NULL,
    connect_ms             REAL,
    tls_ms                 REAL,
    upstream_ms            REAL,
    total_ms               REAL,
    request_headers        TEXT NOT NULL,
    response_headers       TEXT,
    request_body_complete  INTEGER NOT NULL,
    response_body_complete INTEGER NOT NULL,
    request_body_sha256    TEXT,
    response_body_sha256   TEXT,
    review_id              TEXT,
    request_body           BLOB,
    response_body          BLOB
  );

  CREATE TEMP TABLE exchange_renumber AS
    SELECT id AS old_id, row_number() OVER (ORDER BY started_at, id) AS new_id FROM exchanges;
  CREATE UNIQUE INDEX temp.exchange_renumber_old ON exchange_renumber(old_id);

  INSERT INTO exchanges_v2
    SELECT m.new_id, e.session_id, e.agent, e.started_at, e.ended_at, e.method, e.scheme, e.host, e.port, e.path,
           e.kind, e.verdict, e.rule_id, e.explanation, e.status, e.error, e.request_bytes, e.response_bytes,
           e.connect_ms, e.tls_ms, e.upstream_ms, e.total_ms, e.request_headers, e.response_headers,
           e.request_body_complete, e.response_body_complete, e.request_body_sha256, e.response_body_sha256,
           e.review_id,
           (SELECT b.body FROM exchange_bodies b WHERE b.exchange_id = e.id AND b.direction = 'request'),
           (SELECT b.body FROM exchange_bodies b WHERE b.exchange_id = e.id AND b.direction = 'response')
      FROM exchanges e JOIN exchange_renumber m ON m.old_id = e.id;

  UPDATE reviews SET exchange_id = (SELECT CAST(m.new_id AS TEXT) FROM exchange_renumber m WHERE m.old_id = reviews.exchange_id)
   WHERE exchange_id IN (SELECT old_id FROM exchange_renumber);

  DROP TABLE exchange_bodies;
  DROP TABLE exchanges;
  DROP TABLE temp.exchange_renumber;
  ALTER TABLE exchanges_v2 RENAME TO exchanges;

  CREATE INDEX exchanges_agent ON exchanges(agent, id);
  CREATE INDEX exchanges_host ON exchanges(host, id);
  CREATE INDEX exchanges_kind ON exchanges(kind, id);
  CREATE INDEX exchanges_verdict ON exchanges(verdict, id);
  CREATE INDEX exchanges_session ON exchanges(session_id, id);
  CREATE INDEX exchanges_review ON exchanges(review_id) WHERE review_id IS NOT NULL;

  CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    next INTEGER NOT NULL
  );
  INSERT INTO counters (name, next) SELECT 'exchange', coalesce(max(id), 0) + 1 FROM exchanges;

  CREATE INDEX sessions_started ON sessions(started_at);
  `,
  // 3: large text bodies are stored gzip-compressed; NULL means the bytes are stored as they passed.
  `
  ALTER TABLE exchanges ADD COLUMN request_body_encoding TEXT;
  ALTER TABLE exchanges ADD COLUMN response_body_encoding TEXT;
  `,
  // 4: which token a session authenticated with (its SHA-256's first 12 hex digits, as in the audit
  // log's agent.token-issued) and that token's label ("run claude (pid 4242)"), so a connection
  // can be traced to the run that made it.
  `
  ALTER TABLE sessions ADD COLUMN token TEXT;
  ALTER TABLE sessions ADD COLUMN via TEXT;
  `,
  // 5: what upstream did with an approved push, read from its report-status ('ok', or the refs it
  // refused and why): an HTTP 200 answer can still refuse every ref.
  `
  ALTER TABLE reviews ADD COLUMN upstream_result TEXT;
  `,
  // 6: seals (main/store/seals.ts). Bodies dropped for the body budget keep their part of their row's seal;
  // where each seal ends (retention deletes whole seals), the ids a seal left open (in flight) and the
  // sessions sealed, for the next seal. The audit chain is what verify trusts; these only tell the sealer where it is.
  `
  ALTER TABLE exchanges ADD COLUMN bodies_sealed TEXT;
  CREATE TABLE exchange_seals (
    upto INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL
  );
  CREATE TABLE seal_open (
    id INTEGER PRIMARY KEY
  );
  ALTER TABLE sessions ADD COLUMN sealed INTEGER;
  CREATE INDEX sessions_to_seal ON sessions(id) WHERE ended_at IS NOT NULL AND sealed IS NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction together with its user_version bump
 * (the version is re-read inside the transaction, so two processes opening the same file cannot both apply one).
 */
export function migrate(db: Database.Database, file: string, migrations: readonly string[] = MIGRATIONS): number {
  const step = db.transaction((): boolean => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > migrations.length) {
      throw new AirlockError(
        'unavailable',
        `The database ${file} has schema version ${current}, newer than this Airlock understands (${migrations.length}); upgrade Airlock or use another data directory.`,
        { file, version: current, known: migrations.length },
      );
    }
    if (current === migrations.length) return false;
    db.exec(migrations[current]!);
    db.pragma(`user_version = ${current + 1}`);
    return true;
  });
  while (step.immediate()) {
    /* next migration */
  }
  return migrations.length;
}
