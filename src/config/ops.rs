//! The operations sections: `[reconcile]` and `[retention]`.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Reconciliation (`walletctl reconcile`, and `serve` when `interval_secs` is set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// How often `serve` reconciles, in seconds (default 0: never; use cron).
    pub interval_secs: u64,
    /// Whether the scheduled run repairs what it can repair safely.
    pub fix: bool,
    /// An event unpublished for longer than this many seconds is a difference (default 60).
    pub outbox_age_secs: u64,
    /// A standby further behind than this many seconds is a difference (default 30).
    pub replica_lag_secs: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            interval_secs: 0,
            fix: false,
            outbox_age_secs: 60,
            replica_lag_secs: 30,
        }
    }
}

/// Retention: what `walletctl gc` (and `serve`, on a schedule) removes.
/// The ledger, the audit trail and billed ad events are never removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Idempotency keys older than this many days are removed (default 30):
    /// a retry after that is a new request.
    pub idempotency_key_days: u32,
    /// Published outbox rows older than this many hours are removed (default 72).
    pub outbox_published_hours: u32,
    /// Events of the embedded event log older than this many days are removed
    /// (default 7), as a Kafka topic's retention would (Kafka keeps its own).
    pub event_log_days: u32,
    /// How often `serve` runs the cleanup, in seconds (default 3,600; 0 = never).
    pub gc_interval_secs: u64,
    /// Rows removed per statement (default 1,000): short transactions, no long locks.
    pub batch: u32,
    /// Allows windows under the safe minimums (a day of idempotency keys and
    /// of embedded events): a client retrying after that is charged again,
    /// and a consumer down that long misses events. For tests only.
    pub allow_unsafe_retention: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            idempotency_key_days: 30,
            outbox_published_hours: 72,
            event_log_days: 7,
            gc_interval_secs: 3_600,
            batch: 1_000,
            allow_unsafe_retention: false,
        }
    }
}

impl RetentionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.batch == 0 {
            return invalid("retention.batch", "must be at least 1");
        }
        if !self.allow_unsafe_retention {
            if self.idempotency_key_days < 1 {
                return invalid(
                    "retention.idempotency_key_days",
                    "must be at least 1: a client retrying after the key is gone is charged again (set retention.allow_unsafe_retention = true to accept that)",
                );
            }
            if self.event_log_days < 1 {
                return invalid(
                    "retention.event_log_days",
                    "must be at least 1: a consumer down longer misses events (set retention.allow_unsafe_retention = true to accept that)",
                );
            }
        }
        Ok(())
    }
}
