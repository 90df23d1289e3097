-- The embedded campaign store: its own file, not the wallet's database.
-- `doc` is the whole campaign as JSON (free-form fields round-trip exactly);
-- the other columns serve queries and the version guard.
CREATE TABLE campaigns (
    campaign_id  TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX campaigns_user_status ON campaigns (user_id, status);
