use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use super::{
    EventError, EventLog, GroupLag, Message, PartitionInfo, Position, Record, Subscription,
    TopicInfo, Trimmed,
};

/// How long an idle consumer sleeps before looking again (other processes
/// append without waking it).
const POLL: Duration = Duration::from_millis(100);
const BATCH: i64 = 256;

/// A durable, in-process event log in a SQLite file: the embedded stand-in
/// for Kafka. One partition per topic; offsets are row ids.
#[derive(Clone)]
pub struct EmbeddedLog {
    pool: SqlitePool,
    notify: Arc<Notify>,
}

fn err(e: sqlx::Error) -> EventError {
    EventError::Unavailable(e.to_string())
}

impl EmbeddedLog {
    /// Opens (or creates) the log at `path`.
    pub async fn open(path: &Path) -> Result<Self, EventError> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(err)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(err)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS event_log (offset INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, \
             key TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(err)?;
        sqlx::query("CREATE INDEX IF NOT EXISTS event_log_topic ON event_log (topic, offset)")
            .execute(&pool)
            .await
            .map_err(err)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS event_offsets (grp TEXT NOT NULL, topic TEXT NOT NULL, next_offset INTEGER NOT NULL, \
             PRIMARY KEY (grp, topic))",
        )
        .execute(&pool)
        .await
        .map_err(err)?;
        Ok(EmbeddedLog {
            pool,
            notify: Arc::new(Notify::new()),
        })
    }

    /// The offset `group` committed on `topic` (the next it reads), if any.
    async fn committed(&self, group: &str, topic: &str) -> Result<Option<i64>, EventError> {
        sqlx::query_scalar("SELECT next_offset FROM event_offsets WHERE grp = ? AND topic = ?")
            .bind(group)
            .bind(topic)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn ensure_topics(&self) -> Result<(), EventError> {
        Ok(())
    }

    async fn publish(&self, records: &[Record<'_>]) -> Result<(), EventError> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        let now = crate::domain::now_ms();
        for r in records {
            sqlx::query(
                "INSERT INTO event_log (topic, key, payload, created_at_ms) VALUES (?, ?, ?, ?)",
            )
            .bind(r.topic)
            .bind(r.key)
            .bind(r.payload)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        self.notify.notify_waiters();
        Ok(())
    }

    async fn subscribe(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Box<dyn Subscription>, EventError> {
        let next = self.committed(group, topic).await?;
        if next.is_none() {
            // A group that joined holds its place from the start, so `trim`
            // never removes what it has not read and committed.
            sqlx::query(
                "INSERT INTO event_offsets (grp, topic, next_offset) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(topic)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        }
        Ok(Box::new(EmbeddedSubscription {
            log: self.clone(),
            group: group.to_owned(),
            topic: topic.to_owned(),
            position: next.unwrap_or(0),
            buffer: std::collections::VecDeque::new(),
        }))
    }

    async fn trim(
        &self,
        before_ms: i64,
        batch: i64,
        dry_run: bool,
    ) -> Result<Option<Trimmed>, EventError> {
        // An event is past its window, and no group that joined its topic
        // still has to read it (offsets are shared by every topic of the file).
        const REMOVABLE: &str = "created_at_ms < $1 AND offset < COALESCE(\
             (SELECT MIN(o.next_offset) FROM event_offsets o WHERE o.topic = event_log.topic), 9223372036854775807)";
        let count = |sql: String| async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(before_ms)
                .fetch_one(&self.pool)
                .await
                .map(|n| n as u64)
                .map_err(err)
        };
        let past = count("SELECT COUNT(*) FROM event_log WHERE created_at_ms < $1".into()).await?;
        if dry_run {
            let removed =
                count(format!("SELECT COUNT(*) FROM event_log WHERE {REMOVABLE}")).await?;
            return Ok(Some(Trimmed {
                removed,
                kept_uncommitted: past - removed,
            }));
        }
        let delete = format!(
            "DELETE FROM event_log WHERE offset IN (SELECT offset FROM event_log WHERE {REMOVABLE} ORDER BY offset LIMIT $2)"
        );
        let mut total = 0;
        loop {
            let n = sqlx::query(&delete)
                .bind(before_ms)
                .bind(batch)
                .execute(&self.pool)
                .await
                .map_err(err)?
                .rows_affected();
            total += n;
            if n < batch as u64 {
                return Ok(Some(Trimmed {
                    removed: total,
                    kept_uncommitted: past.saturating_sub(total),
                }));
            }
            tokio::task::yield_now().await;
        }
    }

    async fn describe(&self, topic: &str) -> Result<TopicInfo, EventError> {
        let (low, high): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(offset), MAX(offset) FROM event_log WHERE topic = ?")
                .bind(topic)
                .fetch_one(&self.pool)
                .await
                .map_err(err)?;
        let high = high.map_or(0, |h| h + 1);
        Ok(TopicInfo {
            exists: true,
            partitions: vec![PartitionInfo {
                partition: 0,
                low: low.unwrap_or(high),
                high,
            }],
            replication_factor: None,
        })
    }

    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<GroupLag>, EventError> {
        let committed = self.committed(group, topic).await?;
        // Offsets are shared by every topic of the file: count, not subtract.
        let (lag, end): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE offset >= ?), MAX(offset) FROM event_log WHERE topic = ?",
        )
        .bind(committed.unwrap_or(0))
        .bind(topic)
        .fetch_one(&self.pool)
        .await
        .map_err(err)?;
        Ok(vec![GroupLag {
            partition: 0,
            committed,
            end: end.map_or(0, |e| e + 1),
            lag,
        }])
    }

    async fn resolve(
        &self,
        topic: &str,
        partition: i32,
        position: Position,
    ) -> Result<i64, EventError> {
        if partition != 0 {
            return Err(EventError::Other(format!(
                "the embedded log has one partition (0), not {partition}"
            )));
        }
        let info = self.describe(topic).await?;
        let p = &info.partitions[0];
        Ok(match position {
            Position::Beginning => p.low,
            Position::End => p.high,
            Position::Offset(o) => o,
            Position::Timestamp(t) => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MIN(offset) FROM event_log WHERE topic = ? AND created_at_ms >= ?",
            )
            .bind(topic)
            .bind(t)
            .fetch_one(&self.pool)
            .await
            .map_err(err)?
            .unwrap_or(p.high),
        })
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Message>, EventError> {
        if partition != 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT offset, key, payload FROM event_log WHERE topic = ? AND offset >= ? AND offset < ? ORDER BY offset LIMIT ?",
        )
        .bind(topic)
        .bind(from)
        .bind(to)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|r| Message {
                topic: topic.to_owned(),
                key: r.get("key"),
                payload: r.get("payload"),
                partition: 0,
                offset: r.get("offset"),
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), EventError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

struct EmbeddedSubscription {
    log: EmbeddedLog,
    group: String,
    topic: String,
    /// The next offset to read.
    position: i64,
    buffer: std::collections::VecDeque<Message>,
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Result<Message, EventError> {
        loop {
            if let Some(m) = self.buffer.pop_front() {
                self.position = m.offset + 1;
                return Ok(m);
            }
            let notified = self.log.notify.notified();
            let rows = sqlx::query("SELECT offset, key, payload FROM event_log WHERE topic = ? AND offset >= ? ORDER BY offset LIMIT ?")
                .bind(&self.topic)
                .bind(self.position)
                .bind(BATCH)
                .fetch_all(&self.log.pool)
                .await
                .map_err(err)?;
            for row in rows {
                self.buffer.push_back(Message {
                    topic: self.topic.clone(),
                    key: row.try_get(1).map_err(err)?,
                    payload: row.try_get(2).map_err(err)?,
                    partition: 0,
                    offset: row.try_get(0).map_err(err)?,
                });
            }
            if self.buffer.is_empty() {
                let _ = tokio::time::timeout(POLL, notified).await;
            }
        }
    }

    async fn commit(&mut self, message: &Message) -> Result<(), EventError> {
        sqlx::query(
            "INSERT INTO event_offsets (grp, topic, next_offset) VALUES (?, ?, ?) \
             ON CONFLICT (grp, topic) DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
        )
        .bind(&self.group)
        .bind(&self.topic)
        .bind(message.offset + 1)
        .execute(&self.log.pool)
        .await
        .map_err(err)?;
        Ok(())
    }
}
