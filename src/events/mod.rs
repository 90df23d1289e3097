//! The event log port: Kafka in distributed mode, a durable SQLite log in the
//! embedded default. Both give at-least-once delivery, per-key order within a
//! partition, consumer groups with committed offsets, and topics named
//! `{prefix}{logical}`.

mod embedded;
mod kafka;
pub mod outbox;

use async_trait::async_trait;

pub use embedded::EmbeddedLog;
pub use kafka::KafkaLog;

/// Logical topics walletctl uses.
pub mod topic {
    /// Wallet balance changes, keyed by user id.
    pub const BALANCE_UPDATED: &str = "balance_updated";
    /// Ad impressions and clicks.
    pub const AD_EVENTS: &str = "ad_events";
    /// Campaigns paused for lack of funds or by an operator.
    pub const CAMPAIGN_PAUSED: &str = "campaign_paused";
    /// Campaigns resumed.
    pub const CAMPAIGN_RESUMED: &str = "campaign_resumed";
    /// New campaigns from other services, keyed by campaign id.
    pub const CAMPAIGN_CREATED: &str = "campaign_created";
    /// `campaign_created` events that could not be ingested, with the reason.
    pub const CAMPAIGN_CREATED_DEAD: &str = "campaign_created.dead";
    /// Every topic, created at start-up.
    pub const ALL: [&str; 6] = [
        BALANCE_UPDATED,
        AD_EVENTS,
        CAMPAIGN_PAUSED,
        CAMPAIGN_RESUMED,
        CAMPAIGN_CREATED,
        CAMPAIGN_CREATED_DEAD,
    ];
}

/// A message read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Logical topic (without prefix).
    pub topic: String,
    /// Partition key.
    pub key: String,
    /// JSON payload.
    pub payload: String,
    /// Partition (always 0 in the embedded log).
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// Why the log could not do something.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The broker or file could not be reached in time.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("event log error: {0}")]
    Other(String),
}

/// One record to publish.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Logical topic.
    pub topic: &'a str,
    /// Partition key.
    pub key: &'a str,
    /// JSON payload.
    pub payload: &'a str,
}

/// The log, as producers and consumers use it.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Creates the topics that do not exist yet.
    async fn ensure_topics(&self) -> Result<(), EventError>;
    /// Publishes records durably; returns once all are acknowledged.
    async fn publish(&self, records: &[Record<'_>]) -> Result<(), EventError>;
    /// Joins consumer group `group` on a logical topic, from its committed offsets
    /// (or the beginning).
    async fn subscribe(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Box<dyn Subscription>, EventError>;
    /// Removes events appended before `before_ms`, `batch` at a time (or,
    /// with `dry_run`, counts them); `None` where the broker keeps its own
    /// retention (Kafka).
    async fn trim(
        &self,
        before_ms: i64,
        batch: i64,
        dry_run: bool,
    ) -> Result<Option<u64>, EventError> {
        let _ = (before_ms, batch, dry_run);
        Ok(None)
    }
    /// Checks the log answers.
    async fn ping(&self) -> Result<(), EventError>;
    /// `kafka` or `embedded`.
    fn kind(&self) -> &'static str;
}

/// A consumer group member.
#[async_trait]
pub trait Subscription: Send {
    /// The next message; waits for one.
    async fn next(&mut self) -> Result<Message, EventError>;
    /// Commits everything up to and including `message`.
    async fn commit(&mut self, message: &Message) -> Result<(), EventError>;
}

/// `{prefix}{logical}`.
pub fn physical_topic(prefix: &str, logical: &str) -> String {
    format!("{prefix}{logical}")
}
