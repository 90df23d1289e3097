//! The event log port: Kafka in distributed mode, a durable SQLite log in the
//! embedded default. Both give at-least-once delivery, per-key order within a
//! partition, consumer groups with committed offsets, and topics named
//! `{prefix}{logical}`.

pub mod dead_letter;
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

/// What trimming the log came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Trimmed {
    /// Events removed (or, in a dry run, that would be).
    pub removed: u64,
    /// Events past their window kept because a consumer group has not
    /// committed them yet.
    pub kept_uncommitted: u64,
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

/// Where a read of a partition starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The oldest event still kept.
    Beginning,
    /// After the newest event.
    End,
    /// This offset.
    Offset(i64),
    /// The first event at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// One partition of a topic as the log has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: i32,
    /// The oldest offset kept.
    pub low: i64,
    /// The offset the next event gets.
    pub high: i64,
}

/// A topic as the log has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopicInfo {
    /// Whether it exists.
    pub exists: bool,
    /// Its partitions.
    pub partitions: Vec<PartitionInfo>,
    /// Replicas of each partition (Kafka), `None` where it does not apply.
    pub replication_factor: Option<i32>,
}

/// A consumer group's position in one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupLag {
    /// The partition.
    pub partition: i32,
    /// The next offset the group will read, if it has committed one.
    pub committed: Option<i64>,
    /// The offset the next event gets.
    pub end: i64,
    /// Events the group has not consumed yet.
    pub lag: i64,
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
    /// with `dry_run`, counts them), but never one a consumer group that
    /// joined the topic has not committed yet; `None` where the broker keeps
    /// its own retention (Kafka).
    async fn trim(
        &self,
        before_ms: i64,
        batch: i64,
        dry_run: bool,
    ) -> Result<Option<Trimmed>, EventError> {
        let _ = (before_ms, batch, dry_run);
        Ok(None)
    }
    /// A topic's partitions and their offsets.
    async fn describe(&self, topic: &str) -> Result<TopicInfo, EventError>;
    /// Consumer group `group`'s committed offsets and lag on `topic`.
    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<GroupLag>, EventError>;
    /// The offset `position` names in a partition.
    async fn resolve(
        &self,
        topic: &str,
        partition: i32,
        position: Position,
    ) -> Result<i64, EventError>;
    /// Events of a partition with `from <= offset < to`, at most `limit`,
    /// in order, without joining a consumer group.
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Message>, EventError>;
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
