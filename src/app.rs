//! Opening every backend the configuration names, and probing them for `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use crate::ads::cache::{CampaignCache, MemoryCampaignCache, RedisCampaignCache};
use crate::ads::store::{CampaignStore, EmbeddedCampaigns, MongoCampaigns};
use crate::billing::BillingStore;
use crate::config::Config;
use crate::events::outbox::Outbox;
use crate::events::{EmbeddedLog, EventLog, KafkaLog};
use crate::lock::{MemoryLocks, RedisLocks, UserLocks};
use crate::platform::audit::AuditStore;
use crate::platform::auth::TokenStore;
use crate::platform::mongo::MongoHandle;
use crate::platform::redis::RedisHandle;
use crate::platform::sql::{Db, Dialect};
use crate::shards::ShardStore;
use crate::wallet::{Limits, WalletService, WalletStore};
use anyhow::Context;

/// How long one backend may take to answer a readiness probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Every backend of one process, opened once and shared.
#[derive(Clone)]
pub struct Backends {
    /// The configuration they were opened with.
    pub config: Arc<Config>,
    /// The SQL pools every area's store runs on.
    pub db: Db,
    /// The wallet's store (wallets, ledger, keys).
    pub wallets: WalletStore,
    /// Billing's store (counters, event records; charges through `wallets`).
    pub billing: BillingStore,
    /// API tokens.
    pub tokens: TokenStore,
    /// The audit trail.
    pub audit: AuditStore,
    /// The shard map (region → replicas) and replica status.
    pub shards: ShardStore,
    /// The transactional outbox and its relay lease.
    pub outbox: Outbox,
    /// The event log.
    pub events: Arc<dyn EventLog>,
    /// Per-user locks.
    pub locks: Arc<dyn UserLocks>,
    /// Redis, when configured.
    pub redis: Option<RedisHandle>,
    /// MongoDB, when configured.
    pub mongo: Option<MongoHandle>,
    /// The campaign store: MongoDB, or the embedded file.
    pub campaigns: Arc<dyn CampaignStore>,
    /// The active campaign cache: Redis, or process memory.
    pub campaign_cache: Arc<dyn CampaignCache>,
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
        let db = Db::open(&config).context("opening the SQL store")?;
        let wallets = WalletStore::new(db.clone());
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
            Some(m) => Some(MongoHandle::open(m).await.context("configuring MongoDB")?),
            None => None,
        };
        let campaigns: Arc<dyn CampaignStore> = match &mongo {
            Some(m) => Arc::new(MongoCampaigns::new(m.clone())),
            None => Arc::new({
                std::fs::create_dir_all(&config.data_dir).with_context(|| {
                    format!("creating the data directory {}", config.data_dir.display())
                })?;
                EmbeddedCampaigns::open(&config.embedded_campaigns_path())
                    .context("opening the embedded campaign store")?
            }),
        };
        let campaign_cache: Arc<dyn CampaignCache> = match &redis {
            Some(r) => Arc::new(RedisCampaignCache::new(r.clone())),
            None => Arc::new(MemoryCampaignCache::default()),
        };
        Ok(Backends {
            campaigns,
            campaign_cache,
            config,
            billing: BillingStore::new(wallets.clone()),
            tokens: TokenStore::new(db.clone()),
            audit: AuditStore::new(db.clone()),
            shards: ShardStore::new(db.clone()),
            outbox: Outbox::new(db.clone()),
            wallets,
            db,
            events,
            locks,
            redis,
            mongo,
        })
    }

    /// The wallet service over these backends.
    pub fn wallet_service(&self) -> WalletService {
        let w = &self.config.wallet;
        WalletService::new(
            self.wallets.clone(),
            self.locks.clone(),
            Limits {
                max_queue: w.max_queue_per_user,
                max_groups: w.max_groups_in_flight,
                // A kept lease must still be live when its group commits.
                lease_reuse: Duration::from_millis(w.lock_ttl_ms / 4),
            },
        )
    }

    /// Probes the store: the primary and each replica (replicas are optional:
    /// reads fall back to the primary), concurrently.
    pub async fn probe_store(&self) -> Vec<Probe> {
        let primary_name = match self.db.dialect() {
            Dialect::Postgres => "postgres_primary",
            Dialect::Sqlite => "embedded_store",
        };
        let primary = probe(primary_name, Need::Required, async {
            self.db.ping_primary().await.map_err(|e| e.to_string())
        });
        let replicas = tokio::time::timeout(PROBE_TIMEOUT, self.db.ping_replicas());
        let (primary, replicas) = tokio::join!(primary, replicas);
        let mut out = vec![primary];
        let replicas = replicas.unwrap_or_else(|_| {
            self.db
                .replica_names()
                .into_iter()
                .map(|n| (n, Err(format!("no answer within {PROBE_TIMEOUT:?}"))))
                .collect()
        });
        for (name, res) in replicas {
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

    /// Probes the campaign store (MongoDB, or the embedded file).
    pub async fn probe_campaigns(&self, need: Need) -> Probe {
        let campaigns = self.campaigns.clone();
        probe(campaigns.kind(), need, async move {
            campaigns.ping().await.map_err(|e| e.to_string())
        })
        .await
    }
}

/// Runs one probe under [`PROBE_TIMEOUT`].
pub async fn probe(
    name: &str,
    need: Need,
    check: impl Future<Output = Result<(), String>>,
) -> Probe {
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
