-- Per advertiser, the newest wallet version whose balance_updated event has
-- been applied: older and repeated events are recognised and skipped.
CREATE TABLE wallet_versions (
    user_id  TEXT PRIMARY KEY,
    version  INTEGER NOT NULL
);
