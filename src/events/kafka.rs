use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message as _, Offset, TopicPartitionList};

use super::{EventError, EventLog, Message, Record, Subscription, physical_topic, topic};
use crate::config::KafkaConfig;

const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

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
