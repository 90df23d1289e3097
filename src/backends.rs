//! Opening every backend the configuration names, and probing them for `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mongodb::bson::doc;

use crate::config::Config;
use crate::events::{EmbeddedLog, EventLog, KafkaLog};
use crate::lock::{MemoryLocks, RedisHandle, RedisLocks, UserLocks};
use crate::store::Store;
use crate::wallet::WalletService;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Every backend of one process, opened once and shared.
#[derive(Clone)]
pub struct Backends {
    /// The configuration they were opened with.
    pub config: Arc<Config>,
    /// The wallet store.
    pub store: Store,
    /// The event log.
    pub events: Arc<dyn EventLog>,
    /// Per-user locks.
    pub locks: Arc<dyn UserLocks>,
    /// Redis, when configured.
    pub redis: Option<RedisHandle>,
    /// MongoDB, when configured: the client and database name.
    pub mongo: Option<(mongodb::Client, String)>,
}

/// The outcome of probing one backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Probe {
    /// e.g. `postgres_primary`, `replica:se1`, `redis`, `kafka`, `mongodb`, `embedded_store`.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Whether the service is not ready without it.
    pub required: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which backends a probe covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Required: not ready without it.
    Required,
    /// Optional: reported, but the service works without it.
    Optional,
}

impl Backends {
    /// Opens everything; network connections are made lazily.
    pub async fn open(config: Config) -> anyhow::Result<Backends> {
        let config = Arc::new(config);
        let store = Store::open(&config).context("opening the wallet store")?;
        let events: Arc<dyn EventLog> = match &config.kafka {
            Some(k) => Arc::new(KafkaLog::new(k).context("configuring Kafka")?),
            None => {
                std::fs::create_dir_all(&config.data_dir).with_context(|| {
                    format!("creating the data directory {}", config.data_dir.display())
                })?;
                Arc::new(
                    EmbeddedLog::open(&config.data_dir.join("events.db"))
                        .await
                        .context("opening the embedded event log")?,
                )
            }
        };
        let wait = Duration::from_millis(config.wallet.lock_wait_ms);
        let redis = config
            .redis
            .as_ref()
            .map(RedisHandle::new)
            .transpose()
            .context("configuring Redis")?;
        let locks: Arc<dyn UserLocks> = match &redis {
            Some(r) => Arc::new(RedisLocks::new(
                r.clone(),
                Duration::from_millis(config.wallet.lock_ttl_ms),
                wait,
            )),
            None => Arc::new(MemoryLocks::new(wait)),
        };
        let mongo = match &config.mongodb {
            Some(m) => {
                let mut opts = mongodb::options::ClientOptions::parse(m.url.expose())
                    .await
                    .context("parsing mongodb.url")?;
                opts.server_selection_timeout = Some(PROBE_TIMEOUT);
                opts.connect_timeout = Some(PROBE_TIMEOUT);
                opts.app_name = Some("walletctl".into());
                Some((
                    mongodb::Client::with_options(opts).context("configuring MongoDB")?,
                    m.database.clone(),
                ))
            }
            None => None,
        };
        Ok(Backends {
            config,
            store,
            events,
            locks,
            redis,
            mongo,
        })
    }

    /// The wallet service over these backends.
    pub fn wallet_service(&self) -> WalletService {
        WalletService::new(self.store.clone(), self.locks.clone())
    }

    /// Probes the store: the primary and each replica (replicas are optional:
    /// reads fall back to the primary).
    pub async fn probe_store(&self) -> Vec<Probe> {
        let primary_name = match self.store.dialect() {
            crate::store::Dialect::Postgres => "postgres_primary",
            crate::store::Dialect::Sqlite => "embedded_store",
        };
        let mut out = vec![
            probe(primary_name, Need::Required, async {
                self.store.ping_primary().await.map_err(|e| e.to_string())
            })
            .await,
        ];
        for (name, res) in self.store.ping_replicas().await {
            out.push(Probe {
                name: format!("replica:{name}"),
                ok: res.is_ok(),
                required: false,
                error: res.err(),
            });
        }
        out
    }

    /// Probes the event log.
    pub async fn probe_events(&self, need: Need) -> Probe {
        let name = self.events.kind();
        probe(
            if name == "kafka" {
                "kafka"
            } else {
                "embedded_event_log"
            },
            need,
            async { self.events.ping().await.map_err(|e| e.to_string()) },
        )
        .await
    }

    /// Probes Redis, if configured.
    pub async fn probe_redis(&self, need: Need) -> Option<Probe> {
        let redis = self.redis.as_ref()?;
        Some(
            probe("redis", need, async {
                redis.ping().await.map_err(|e| e.to_string())
            })
            .await,
        )
    }

    /// Probes MongoDB, if configured.
    pub async fn probe_mongo(&self, need: Need) -> Option<Probe> {
        let (client, db) = self.mongo.as_ref()?;
        Some(
            probe("mongodb", need, async {
                client
                    .database(db)
                    .run_command(doc! { "ping": 1 })
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await,
        )
    }
}

async fn probe(name: &str, need: Need, check: impl Future<Output = Result<(), String>>) -> Probe {
    let res = match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
    };
    Probe {
        name: name.to_owned(),
        ok: res.is_ok(),
        required: need == Need::Required,
        error: res.err(),
    }
}
