//! One lazily connected Redis client, shared by the lock and the caches. Each
//! user of it names its keys through [`RedisHandle::key`], so a configured
//! prefix keeps tests and tenants apart.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::config::RedisConfig;

/// A lazily connected Redis client shared by the lock and the caches. A Redis
/// that is down at start-up is retried on each use instead of failing start-up.
#[derive(Clone)]
pub struct RedisHandle {
    client: redis::Client,
    conn: std::sync::Arc<OnceCell<ConnectionManager>>,
    prefix: String,
}

impl RedisHandle {
    /// Parses the URL; connects on first use.
    pub fn new(config: &RedisConfig) -> Result<Self, redis::RedisError> {
        Ok(RedisHandle {
            client: redis::Client::open(config.url.expose())?,
            conn: Default::default(),
            prefix: config.key_prefix.clone(),
        })
    }

    /// A connection (cheap clone of a multiplexed, self-healing one).
    pub async fn conn(&self) -> Result<ConnectionManager, redis::RedisError> {
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(Duration::from_millis(500))
            .set_number_of_retries(1);
        let client = self.client.clone();
        self.conn
            .get_or_try_init(
                || async move { ConnectionManager::new_with_config(client, cfg).await },
            )
            .await
            .cloned()
    }

    /// `{prefix}{key}`.
    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut c = self.conn().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
    }
}
