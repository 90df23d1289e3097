//! The `[redis]`, `[kafka]` and `[mongodb]` sections.

use serde::{Deserialize, Serialize};

use super::{ConfigError, SecretUrl, invalid};

/// Redis: the per-user lock and the campaign cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// e.g. `redis://127.0.0.1:6379`.
    pub url: SecretUrl,
    /// Prefix of every key walletctl writes, so that tenants or tests can share a server.
    #[serde(default)]
    pub key_prefix: String,
}

/// Kafka: the event log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Prefix of every topic name, so that tenants or tests can share a cluster.
    #[serde(default)]
    pub topic_prefix: String,
    /// Partitions of the topics walletctl creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topics walletctl creates: 1 for a single
    /// broker; 3 (with the broker's `min.insync.replicas = 2`) in production.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
}

fn default_replication() -> i32 {
    1
}

fn default_mongo_db() -> String {
    "walletctl".into()
}

fn default_partitions() -> i32 {
    3
}

/// MongoDB: the campaign store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// e.g. `mongodb://127.0.0.1:27017/?directConnection=true`.
    pub url: SecretUrl,
    /// The database name.
    #[serde(default = "default_mongo_db")]
    pub database: String,
}

impl KafkaConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.partitions < 1 {
            return invalid("kafka.partitions", "must be at least 1");
        }
        if self.replication_factor < 1 {
            return invalid("kafka.replication_factor", "must be at least 1");
        }
        Ok(())
    }
}
