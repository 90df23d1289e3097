//! Retention: removing what is past its window, in bounded batches.
//!
//! - idempotency keys older than `retention.idempotency_key_days` (a retry
//!   after that is a new request; billing's own keys are backed by its event
//!   records, which are kept, so an old ad event is still billed once);
//! - published outbox rows older than `retention.outbox_published_hours`
//!   (never an unpublished one);
//! - events of the embedded event log older than `retention.event_log_days`,
//!   but never one a consumer group has not committed yet (the report says
//!   how many it kept for that); Kafka applies its own topic retention.
//!
//! The ledger, the audit trail and billed ad events are never removed. Each
//! batch is one short transaction of at most `retention.batch` rows, on the
//! owner's connection (the app role cannot delete).

use serde::Serialize;

use crate::Backends;
use crate::config::RetentionConfig;
use crate::platform::sql::{Db, StoreError, in_tx};

/// Rows older than these times (ms since the epoch) are past their window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cutoffs {
    /// Idempotency keys created before this.
    pub idempotency_keys: i64,
    /// Outbox rows published before this.
    pub outbox: i64,
    /// Embedded event-log events appended before this.
    pub event_log: i64,
}

impl Cutoffs {
    /// The cutoffs of `retention` at `now_ms`.
    pub fn at(retention: &RetentionConfig, now_ms: i64) -> Cutoffs {
        const HOUR: i64 = 3_600_000;
        Cutoffs {
            idempotency_keys: now_ms - i64::from(retention.idempotency_key_days) * 24 * HOUR,
            outbox: now_ms - i64::from(retention.outbox_published_hours) * HOUR,
            event_log: now_ms - i64::from(retention.event_log_days) * 24 * HOUR,
        }
    }
}

/// What a cleanup removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Idempotency keys.
    pub idempotency_keys: u64,
    /// Published outbox rows.
    pub outbox: u64,
    /// Embedded event-log events; `None` on Kafka (its own retention applies).
    pub event_log: Option<u64>,
    /// Embedded event-log events past their window kept because a consumer
    /// group has not committed them yet; `None` on Kafka.
    pub event_log_kept: Option<u64>,
    /// Whether nothing was removed.
    pub dry_run: bool,
}

/// One table's cleanup: how to count and how to delete one batch.
struct Target {
    count: &'static str,
    delete: &'static str,
}

const KEYS: Target = Target {
    count: "SELECT CAST(COUNT(*) AS BIGINT) FROM idempotency_keys WHERE created_at_ms < $1",
    delete: "DELETE FROM idempotency_keys WHERE (owner, key) IN \
             (SELECT owner, key FROM idempotency_keys WHERE created_at_ms < $1 LIMIT $2)",
};

const OUTBOX: Target = Target {
    count: "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE sent_at_ms IS NOT NULL AND sent_at_ms < $1",
    delete: "DELETE FROM outbox WHERE id IN \
             (SELECT id FROM outbox WHERE sent_at_ms IS NOT NULL AND sent_at_ms < $1 ORDER BY id LIMIT $2)",
};

/// The SQL of retention: counting and deleting what a [`Target`] names.
struct Retention<'a>(&'a Db);

impl Retention<'_> {
    async fn gc_count(&self, t: &Target, cutoff: i64) -> Result<u64, StoreError> {
        let n = in_tx!(self.0, admin, |tx| {
            sqlx::query_scalar::<_, i64>(t.count)
                .persistent(false)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await?
        });
        Ok(n as u64)
    }

    /// Deletes in batches of `batch` rows, each its own transaction, until
    /// none is left; `progress` gets the running total.
    async fn gc_delete(
        &self,
        t: &Target,
        cutoff: i64,
        batch: u32,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = in_tx!(self.0, admin, |tx| {
                sqlx::query(t.delete)
                    .persistent(false)
                    .bind(cutoff)
                    .bind(i64::from(batch))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            });
            total += n;
            progress(total);
            if n < u64::from(batch) {
                return Ok(total);
            }
            // Let other writers in between batches.
            tokio::task::yield_now().await;
        }
    }
}

/// Removes what is older than `cutoffs` (or, with `dry_run`, counts it).
pub async fn gc(
    backends: &Backends,
    cutoffs: Cutoffs,
    batch: u32,
    dry_run: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<GcReport> {
    let store = Retention(&backends.db);
    let batch = batch.max(1);
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    if dry_run {
        report.idempotency_keys = store.gc_count(&KEYS, cutoffs.idempotency_keys).await?;
        report.outbox = store.gc_count(&OUTBOX, cutoffs.outbox).await?;
    } else {
        report.idempotency_keys = store
            .gc_delete(&KEYS, cutoffs.idempotency_keys, batch, progress)
            .await?;
        let keys = report.idempotency_keys;
        report.outbox = store
            .gc_delete(&OUTBOX, cutoffs.outbox, batch, &|n| progress(keys + n))
            .await?;
    }
    let trimmed = backends
        .events
        .trim(cutoffs.event_log, i64::from(batch), dry_run)
        .await?;
    report.event_log = trimmed.map(|t| t.removed);
    report.event_log_kept = trimmed.map(|t| t.kept_uncommitted);
    Ok(report)
}
