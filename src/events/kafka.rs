use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message as _, Offset, TopicPartitionList};

use super::{
    EventError, EventLog, GroupLag, Message, PartitionInfo, Position, Record, Subscription,
    TopicInfo, physical_topic, topic,
};
use crate::config::KafkaConfig;

const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an inspection (metadata, offsets) may take.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka through librdkafka: an idempotent producer with `acks=all`, and
/// consumer groups with manual commits.
#[derive(Clone)]
pub struct KafkaLog {
    config: KafkaConfig,
    producer: FutureProducer,
}

fn other(e: impl std::fmt::Display) -> EventError {
    EventError::Other(e.to_string())
}

impl KafkaLog {
    /// Builds the producer; nothing connects until first use.
    pub fn new(config: &KafkaConfig) -> Result<Self, EventError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "10000")
            .set("socket.connection.setup.timeout.ms", "3000")
            .create()
            .map_err(other)?;
        Ok(KafkaLog {
            config: config.clone(),
            producer,
        })
    }

    fn physical(&self, logical: &str) -> String {
        physical_topic(&self.config.topic_prefix, logical)
    }

    /// A consumer for inspection and reads: it joins no group (it only
    /// reads `group`'s committed offsets when given) and commits nothing.
    fn inspector(&self, group: Option<&str>) -> Result<BaseConsumer, EventError> {
        let group = match group {
            Some(g) => format!("{}{g}", self.config.topic_prefix),
            None => format!("{}walletctl-inspect", self.config.topic_prefix),
        };
        ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20")
            .set("socket.connection.setup.timeout.ms", "3000")
            .create()
            .map_err(other)
    }
}

fn unavailable(e: impl std::fmt::Display) -> EventError {
    EventError::Unavailable(e.to_string())
}

/// A topic's partitions and watermarks (blocking).
fn describe_blocking(consumer: &BaseConsumer, physical: &str) -> Result<TopicInfo, EventError> {
    let md = consumer
        .fetch_metadata(Some(physical), INSPECT_TIMEOUT)
        .map_err(unavailable)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == physical) else {
        return Ok(TopicInfo {
            exists: false,
            partitions: Vec::new(),
            replication_factor: None,
        });
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(TopicInfo {
            exists: false,
            partitions: Vec::new(),
            replication_factor: None,
        });
    }
    let mut partitions = Vec::new();
    for p in t.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(physical, p.id(), INSPECT_TIMEOUT)
            .map_err(unavailable)?;
        partitions.push(PartitionInfo {
            partition: p.id(),
            low,
            high,
        });
    }
    partitions.sort_by_key(|p| p.partition);
    Ok(TopicInfo {
        exists: true,
        replication_factor: t.partitions().first().map(|p| p.replicas().len() as i32),
        partitions,
    })
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn ensure_topics(&self) -> Result<(), EventError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .create()
            .map_err(other)?;
        let names: Vec<String> = topic::ALL.iter().map(|t| self.physical(t)).collect();
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| {
                NewTopic::new(
                    n,
                    self.config.partitions,
                    TopicReplication::Fixed(self.config.replication_factor),
                )
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(&new, &opts)
            .await
            .map_err(|e| EventError::Unavailable(e.to_string()))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(other(format!("creating topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    async fn publish(&self, records: &[Record<'_>]) -> Result<(), EventError> {
        let topics: Vec<String> = records.iter().map(|r| self.physical(r.topic)).collect();
        let sends = records.iter().zip(&topics).map(|(r, t)| {
            self.producer.send(
                FutureRecord::to(t).key(r.key).payload(r.payload),
                SEND_TIMEOUT,
            )
        });
        for res in futures::future::join_all(sends).await {
            res.map_err(|(e, _)| EventError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        group: &str,
        logical: &str,
    ) -> Result<Box<dyn Subscription>, EventError> {
        // Groups share the topic prefix, so tenants (and tests) sharing a
        // cluster never share a consumer group.
        let group = format!("{}{group}", self.config.topic_prefix);
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            // An idle fetch waits at most this long on the broker. librdkafka's
            // 500 ms default put half a second into every pause (measured with
            // `walletctl bench pause`): the broker here answers a waiting fetch
            // only when the wait ends.
            .set("fetch.wait.max.ms", "20")
            .create()
            .map_err(other)?;
        let physical = self.physical(logical);
        consumer.subscribe(&[&physical]).map_err(other)?;
        Ok(Box::new(KafkaSubscription {
            consumer,
            logical: logical.to_owned(),
            physical,
        }))
    }

    async fn describe(&self, logical: &str) -> Result<TopicInfo, EventError> {
        let (consumer, physical) = (self.inspector(None)?, self.physical(logical));
        tokio::task::spawn_blocking(move || describe_blocking(&consumer, &physical))
            .await
            .map_err(other)?
    }

    async fn lag(&self, group: &str, logical: &str) -> Result<Vec<GroupLag>, EventError> {
        let (consumer, physical) = (self.inspector(Some(group))?, self.physical(logical));
        tokio::task::spawn_blocking(move || {
            let info = describe_blocking(&consumer, &physical)?;
            let mut tpl = TopicPartitionList::new();
            for p in &info.partitions {
                tpl.add_partition(&physical, p.partition);
            }
            let committed = consumer
                .committed_offsets(tpl, INSPECT_TIMEOUT)
                .map_err(unavailable)?;
            Ok(info
                .partitions
                .iter()
                .map(|p| {
                    let committed =
                        committed
                            .find_partition(&physical, p.partition)
                            .and_then(|e| match e.offset() {
                                Offset::Offset(n) => Some(n),
                                _ => None,
                            });
                    GroupLag {
                        partition: p.partition,
                        committed,
                        end: p.high,
                        lag: (p.high - committed.unwrap_or(p.low).max(p.low)).max(0),
                    }
                })
                .collect())
        })
        .await
        .map_err(other)?
    }

    async fn resolve(
        &self,
        logical: &str,
        partition: i32,
        position: Position,
    ) -> Result<i64, EventError> {
        let (consumer, physical) = (self.inspector(None)?, self.physical(logical));
        tokio::task::spawn_blocking(move || {
            let (low, high) = consumer
                .fetch_watermarks(&physical, partition, INSPECT_TIMEOUT)
                .map_err(unavailable)?;
            Ok(match position {
                Position::Beginning => low,
                Position::End => high,
                Position::Offset(o) => o,
                Position::Timestamp(t) => {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(&physical, partition, Offset::Offset(t))
                        .map_err(other)?;
                    let found = consumer
                        .offsets_for_times(tpl, INSPECT_TIMEOUT)
                        .map_err(unavailable)?;
                    match found
                        .find_partition(&physical, partition)
                        .map(|e| e.offset())
                    {
                        Some(Offset::Offset(n)) if n >= 0 => n,
                        _ => high,
                    }
                }
            })
        })
        .await
        .map_err(other)?
    }

    async fn read(
        &self,
        logical: &str,
        partition: i32,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Message>, EventError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let (consumer, physical) = (self.inspector(None)?, self.physical(logical));
        let logical = logical.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&physical, partition, Offset::Offset(from))
                .map_err(other)?;
            consumer.assign(&tpl).map_err(other)?;
            let mut out = Vec::new();
            let mut idle = 0;
            while out.len() < limit {
                match consumer.poll(Duration::from_millis(250)) {
                    Some(Ok(m)) if m.partition() == partition => {
                        idle = 0;
                        if m.offset() >= to {
                            break;
                        }
                        out.push(Message {
                            topic: logical.clone(),
                            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                            payload: String::from_utf8_lossy(m.payload().unwrap_or_default())
                                .into_owned(),
                            partition,
                            offset: m.offset(),
                        });
                        if m.offset() + 1 >= to {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(unavailable(e)),
                    None => {
                        idle += 1;
                        if idle >= 40 {
                            break; // 10 s without an event: what is asked for is not there
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(other)?
    }

    async fn ping(&self) -> Result<(), EventError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, PING_TIMEOUT)
                .map(|_| ())
        })
        .await
        .map_err(other)?
        .map_err(|e| EventError::Unavailable(e.to_string()))
    }

    fn kind(&self) -> &'static str {
        "kafka"
    }
}

struct KafkaSubscription {
    consumer: StreamConsumer,
    logical: String,
    physical: String,
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Message, EventError> {
        let m = self
            .consumer
            .recv()
            .await
            .map_err(|e| EventError::Unavailable(e.to_string()))?;
        Ok(Message {
            topic: self.logical.clone(),
            key: m
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default(),
            payload: m
                .payload()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            partition: m.partition(),
            offset: m.offset(),
        })
    }

    async fn commit(&mut self, message: &Message) -> Result<(), EventError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            &self.physical,
            message.partition,
            Offset::Offset(message.offset + 1),
        )
        .map_err(other)?;
        // Async: the commit is queued and sent in the background, so neither
        // a broker round trip nor a blocked runtime thread is paid per
        // message. A commit that is lost means a redelivery, which every
        // consumer here recognises (at-least-once, idempotent handlers).
        self.consumer.commit(&tpl, CommitMode::Async).map_err(other)
    }
}
