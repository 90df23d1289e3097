-- Billing of ad events (issue 8). Each ad event is billed in one
-- transaction with its wallet charge: the campaign's counters row is
-- locked, the event is looked up (a repeat is answered from its row), the
-- charge goes through walletctl_apply_batch as an `ad_charge` entry, and
-- the event's row records what it came to.

CREATE TABLE ad_billing (
    campaign_id      TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    impressions      BIGINT NOT NULL DEFAULT 0 CHECK (impressions >= 0),
    clicks           BIGINT NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    spent            BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0),
    -- Thousandths of a minor unit accrued by CPM impressions, not yet charged.
    remainder_milli  BIGINT NOT NULL DEFAULT 0 CHECK (remainder_milli >= 0 AND remainder_milli < 1000),
    -- The UTC day (days since the epoch) day_spent belongs to.
    day              BIGINT NOT NULL DEFAULT 0,
    day_spent        BIGINT NOT NULL DEFAULT 0 CHECK (day_spent >= 0),
    updated_at_ms    BIGINT NOT NULL
);

CREATE TABLE ad_events (
    event_id        TEXT PRIMARY KEY,
    campaign_id     TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('impression', 'click')),
    status          TEXT NOT NULL CHECK (status IN ('billed', 'unbilled')),
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    reason          TEXT,
    entry_id        BIGINT,
    occurred_at_ms  BIGINT NOT NULL,
    billed_at_ms    BIGINT NOT NULL,
    CHECK ((status = 'billed') = (reason IS NULL))
);

CREATE INDEX ad_events_campaign ON ad_events (campaign_id, billed_at_ms);
