-- Retention (walletctl gc): idempotency keys and published outbox rows are
-- removed by age, in bounded batches; these indexes find them without a scan.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at_ms);
CREATE INDEX outbox_sent ON outbox (sent_at_ms) WHERE sent_at_ms IS NOT NULL;
