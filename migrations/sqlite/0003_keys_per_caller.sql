-- Idempotency keys belong to the caller (the token's name): see the
-- PostgreSQL migration of the same number. SQLite cannot change a primary
-- key in place, so the table is rebuilt.
CREATE TABLE idempotency_keys_v2 (
    owner          TEXT NOT NULL,
    key            TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status         BIGINT NOT NULL,
    response       TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (owner, key)
);
INSERT INTO idempotency_keys_v2 (owner, key, request_hash, status, response, created_at_ms)
    SELECT COALESCE((SELECT l.actor FROM ledger_entries l WHERE l.idempotency_key = k.key LIMIT 1), ''),
           k.key, k.request_hash, k.status, k.response, k.created_at_ms
      FROM idempotency_keys k;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_v2 RENAME TO idempotency_keys;
