//! The transactional outbox: events written in the same transaction as the
//! change they describe, then relayed to the event log and marked sent.

use serde::{Deserialize, Serialize};

use super::{EventLog, Record};
use crate::domain::now_ms;
use crate::platform::sql::{Db, StoreError, in_tx};

/// An event waiting in (or relayed from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Outbox row id: the relay's order.
    pub id: i64,
    /// Unique id consumers use to drop duplicates.
    pub event_id: String,
    /// Logical topic, without any configured prefix.
    pub topic: String,
    /// Partition key: the user id.
    pub key: String,
    /// JSON payload.
    pub payload: String,
}

/// Appends an event to the outbox inside the caller's transaction `$tx` (of
/// either engine): it is published if and only if that transaction commits.
/// `?` leaves the caller on failure.
macro_rules! outbox_insert {
    ($tx:ident, $event_id:expr, $topic:expr, $key:expr, $payload:expr, $now:expr) => {
        sqlx::query("INSERT INTO outbox (event_id, topic, key, payload, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
            .persistent(false)
            .bind($event_id)
            .bind($topic)
            .bind($key)
            .bind($payload)
            .bind($now)
            .execute(&mut *$tx)
            .await?
    };
}
pub(crate) use outbox_insert;

/// The outbox's store: the relay lease, the unsent events and the backlog.
/// (Events are written by `outbox_insert!` inside each area's own
/// transactions.) Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    /// The outbox over `db`.
    pub fn new(db: Db) -> Outbox {
        Outbox { db }
    }

    /// Takes or renews the relay lease for `holder` until `now + ttl_ms`;
    /// `false` while another holder's lease runs.
    pub async fn take_relay_lease(&self, holder: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        const SQL: &str = "INSERT INTO relay_lease (name, holder, expires_at_ms) VALUES ('outbox', $1, $2) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
             WHERE relay_lease.holder = excluded.holder OR relay_lease.expires_at_ms < $3";
        let n = in_tx!(self.db, primary, |tx| {
            sqlx::query(SQL)
                .persistent(false)
                .bind(holder)
                .bind(now + ttl_ms)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Gives the lease up (at shutdown), so another instance takes over at once.
    pub async fn release_relay_lease(&self, holder: &str) -> Result<(), StoreError> {
        in_tx!(self.db, primary, |tx| {
            sqlx::query("DELETE FROM relay_lease WHERE name = 'outbox' AND holder = $1")
                .persistent(false)
                .bind(holder)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Hands up to `limit` unsent events, oldest first, to `publish`, then
    /// marks exactly those sent. No transaction is open while `publish`
    /// runs, so a slow or absent broker pins no database connection.
    ///
    /// Only the holder of the relay lease ([`Outbox::take_relay_lease`]) may
    /// call this, which keeps each user's events in commit order. A crash (or
    /// a lost lease) after publishing and before marking means the events
    /// are published again: consumers drop them by `event_id`, and a
    /// repeated older version by `version`.
    pub async fn relay_outbox<F, Fut, E>(
        &self,
        limit: i64,
        publish: F,
    ) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxEvent>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let events = self.unsent(limit).await.map_err(RelayError::Store)?;
        if events.is_empty() {
            return Ok(0);
        }
        // The ids are integers read just above: safe to inline.
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        let n = events.len();
        publish(events).await.map_err(RelayError::Publish)?;
        let sql = format!(
            "UPDATE outbox SET sent_at_ms = $1 WHERE id IN ({})",
            ids.join(",")
        );
        let mark = async {
            in_tx!(self.db, primary, |tx| {
                sqlx::query(&sql)
                    .persistent(false)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            });
            Ok::<_, StoreError>(())
        };
        mark.await.map_err(RelayError::Store)?;
        Ok(n)
    }

    async fn unsent(&self, limit: i64) -> Result<Vec<OutboxEvent>, StoreError> {
        const SQL: &str = "SELECT id, event_id, topic, key, payload FROM outbox WHERE sent_at_ms IS NULL ORDER BY id LIMIT $1";
        let rows = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (i64, String, String, String, String)>(SQL)
                .persistent(false)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, event_id, topic, key, payload)| OutboxEvent {
                id,
                event_id,
                topic,
                key,
                payload,
            })
            .collect())
    }

    /// How many events wait to be relayed.
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE sent_at_ms IS NULL";
        Ok(in_tx!(self.db, primary, |tx| {
            sqlx::query_scalar::<_, i64>(SQL)
                .persistent(false)
                .fetch_one(&mut *tx)
                .await?
        }))
    }

    /// Waits until a commit wrote an outbox event (or returns at once if one already did).
    pub async fn outbox_written(&self) {
        self.db.outbox_wait().await;
    }
}

/// Why a relay round failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError<E> {
    /// Reading or marking the outbox failed.
    #[error("outbox: {0}")]
    Store(StoreError),
    /// The event log refused or timed out.
    #[error("publish: {0}")]
    Publish(E),
}

/// One relay round of at most `limit` events: how many were relayed. The
/// caller holds the relay lease. Failures are counted and logged; the
/// events stay in the outbox.
pub async fn relay_once(store: &Outbox, events: &dyn EventLog, limit: i64) -> Result<usize, ()> {
    let res = store
        .relay_outbox(limit, |batch| async move {
            let records: Vec<Record<'_>> = batch
                .iter()
                .map(|e| Record {
                    topic: &e.topic,
                    key: &e.key,
                    payload: &e.payload,
                })
                .collect();
            events.publish(&records).await
        })
        .await;
    match res {
        Ok(n) => {
            if n > 0 {
                metrics::counter!("outbox_relayed_total").increment(n as u64);
            }
            Ok(n)
        }
        Err(RelayError::Publish(e)) => {
            metrics::counter!("outbox_relay_failures_total", "stage" => "publish").increment(1);
            tracing::warn!(error = %e, "outbox relay: publish failed; the events stay in the outbox");
            Err(())
        }
        Err(RelayError::Store(e)) => {
            metrics::counter!("outbox_relay_failures_total", "stage" => "store").increment(1);
            tracing::warn!(error = %e, "outbox relay: store failed");
            Err(())
        }
    }
}

impl Outbox {
    /// Events not published yet that were written before `before_ms`: how
    /// many, and when the oldest was written.
    pub async fn outbox_stuck(&self, before_ms: i64) -> Result<(i64, Option<i64>), StoreError> {
        const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT), MIN(created_at_ms) FROM outbox WHERE sent_at_ms IS NULL AND created_at_ms < $1";
        Ok(in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (i64, Option<i64>)>(SQL)
                .persistent(false)
                .bind(before_ms)
                .fetch_one(&mut *tx)
                .await?
        }))
    }
}
