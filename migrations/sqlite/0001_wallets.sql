-- Wallets, their immutable ledger, idempotency records, the outbox, tokens,
-- the audit trail and the region -> replica map.
CREATE TABLE wallets (
    user_id        TEXT PRIMARY KEY,
    region         TEXT NOT NULL,
    balance        BIGINT NOT NULL CHECK (balance >= 0 AND balance <= 1000000000000000),
    version        BIGINT NOT NULL DEFAULT 0,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX wallets_region ON wallets (region);

CREATE TABLE ledger_entries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT NOT NULL REFERENCES wallets (user_id),
    kind             TEXT NOT NULL CHECK (kind IN ('create', 'credit', 'deduct', 'adjust', 'ad_charge')),
    amount           BIGINT NOT NULL,
    balance_after    BIGINT NOT NULL CHECK (balance_after >= 0),
    version          BIGINT NOT NULL,
    reason           TEXT,
    reference        TEXT,
    idempotency_key  TEXT,
    actor            TEXT NOT NULL,
    lock_fence       BIGINT,
    created_at_ms    BIGINT NOT NULL
);
CREATE INDEX ledger_entries_user ON ledger_entries (user_id, id);

CREATE TABLE idempotency_keys (
    key            TEXT PRIMARY KEY,
    request_hash   TEXT NOT NULL,
    status         BIGINT NOT NULL,
    response       TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    topic          TEXT NOT NULL,
    key            TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    sent_at_ms     BIGINT
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at_ms IS NULL;

CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    token_hash     TEXT NOT NULL UNIQUE,
    scopes         TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    revoked_at_ms  BIGINT
);

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    details        TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE shard_assignments (
    region   TEXT NOT NULL,
    replica  TEXT NOT NULL,
    PRIMARY KEY (region, replica)
);
