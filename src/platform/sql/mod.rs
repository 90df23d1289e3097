//! The SQL plumbing every area shares: PostgreSQL (primary through PgBouncer,
//! replicas per region) or the embedded SQLite file, its migrations, the
//! region → replica map and the read routing.
//!
//! Both engines are driven through `sqlx::Any`, and every statement is written
//! once in the dialect both accept (`$N` parameters, `RETURNING`, `ON CONFLICT`).
//! Correctness lives here: each money movement is one transaction with a
//! conditional update, a ledger entry, an outbox event and an idempotency
//! record. Locks and caches elsewhere only make it faster.
//!
//! PgBouncer in transaction mode hands a client's statements to whichever
//! server connection is free, so named prepared statements leak between
//! clients. Every statement on the primary therefore runs inside an explicit
//! transaction and unprepared (`persistent(false)`); see [`Store::tx`].
//!
//! Pools do not ping a connection before handing it out
//! (`test_before_acquire(false)`): that would add a round trip to every
//! transaction. A dead connection fails the statement instead, which the
//! callers already handle (replica fallback, 503 from the primary).

mod error;
mod replicas;
mod shards;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::Notify;

use crate::config::Config;

pub use error::StoreError;
pub use replicas::{ReadConsistency, ReplicaStatus};
pub use shards::ShardAssignment;

static PG_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: distributed mode.
    Postgres,
    /// SQLite: the embedded default.
    Sqlite,
}

/// The SQL database: pools, replicas and migrations. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    dialect: Dialect,
    /// Writes (and strong reads without a sync replica): PgBouncer or the SQLite writer.
    primary: AnyPool,
    /// The primary itself, bypassing PgBouncer: migrations and replication status.
    direct: AnyPool,
    /// Embedded reads, or the replica set in distributed mode.
    pub(crate) replicas: replicas::ReplicaSet,
    /// `SET LOCAL synchronous_commit` for money-moving transactions.
    pub(crate) synchronous_commit: Option<String>,
    /// The role `serve` connects as through `url`, granted its rights by [`Store::migrate`].
    app_role: Option<String>,
    /// Woken after each commit that wrote an outbox event.
    pub(crate) outbox_notify: Notify,
}

impl Store {
    /// Opens the store the configuration names, without touching the network:
    /// pools connect on first use, so a service can start and report a down
    /// backend on `/readyz` instead of refusing to start.
    pub fn open(config: &Config) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let check = Duration::from_millis(config.wallet.replica_check_ms);
        let inner = match &config.postgres {
            Some(pg) => {
                let primary = AnyPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(pg.pool_size)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy(pg.url.expose())?;
                let direct_url = pg.direct_url.as_ref().unwrap_or(&pg.url);
                let direct = AnyPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy(direct_url.expose())?;
                let replicas = replicas::ReplicaSet::distributed(pg, primary.clone(), check)?;
                Inner {
                    dialect: Dialect::Postgres,
                    primary,
                    direct,
                    replicas,
                    synchronous_commit: pg.synchronous_commit.clone(),
                    app_role: pg.app_role.clone(),
                    outbox_notify: Notify::new(),
                }
            }
            None => {
                std::fs::create_dir_all(&config.data_dir)
                    .map_err(|e| StoreError::Io(config.data_dir.clone(), e))?;
                let url = format!("sqlite://{}?mode=rwc", config.embedded_db_path().display());
                // SQLite has one writer: a single write connection queues writers
                // in-process instead of failing them with SQLITE_BUSY.
                let primary = AnyPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy(&url)?;
                let readers = AnyPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(4)
                    .connect_lazy(&url)?;
                Inner {
                    dialect: Dialect::Sqlite,
                    direct: primary.clone(),
                    primary,
                    replicas: replicas::ReplicaSet::embedded(readers),
                    synchronous_commit: None,
                    app_role: None,
                    outbox_notify: Notify::new(),
                }
            }
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The engine behind this store.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// Applies pending migrations; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let before = self.applied_migrations().await.unwrap_or_default().len();
        self.migrator().run(&self.inner.direct).await?;
        if let Some(role) = &self.inner.app_role {
            self.grant_app_role(role).await?;
        }
        let after = self.applied_migrations().await?.len();
        Ok(after.saturating_sub(before))
    }

    /// Grants the app role exactly what serving needs, as the owner. The
    /// ledger and the audit trail are read and append only; a wallet's
    /// balance, version and timestamp, a key's stored answer and an outbox
    /// row's sent mark are the only columns it may update. Idempotent.
    async fn grant_app_role(&self, role: &str) -> Result<(), StoreError> {
        // The role name was checked against [a-z_][a-z0-9_]* when the configuration was read.
        let statements = [
            "GRANT SELECT, INSERT ON ledger_entries, audit_log TO {r}",
            "GRANT SELECT, INSERT ON wallets TO {r}",
            "GRANT UPDATE (balance, version, updated_at_ms) ON wallets TO {r}",
            "GRANT SELECT, INSERT ON idempotency_keys TO {r}",
            "GRANT UPDATE (status, response) ON idempotency_keys TO {r}",
            "GRANT SELECT, INSERT ON outbox TO {r}",
            "GRANT UPDATE (sent_at_ms) ON outbox TO {r}",
            "GRANT SELECT ON api_tokens, shard_assignments TO {r}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON relay_lease TO {r}",
            "GRANT USAGE ON SEQUENCE ledger_entries_id_seq, audit_log_id_seq, outbox_id_seq TO {r}",
        ];
        let mut tx = self.admin_tx().await?;
        for s in statements {
            sqlx::query(&s.replace("{r}", role))
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every known migration with whether it has been applied: `(version, description, applied)`.
    pub async fn migration_status(&self) -> Result<Vec<(i64, String, bool)>, StoreError> {
        let applied = self.applied_migrations().await.unwrap_or_default();
        Ok(self
            .migrator()
            .iter()
            .map(|m| {
                (
                    m.version,
                    m.description.to_string(),
                    applied.contains(&m.version),
                )
            })
            .collect())
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT version FROM _sqlx_migrations WHERE success = true ORDER BY version",
        )
        .fetch_all(&self.inner.direct)
        .await?;
        rows.iter()
            .map(|r| sqlx::Row::try_get::<i64, _>(r, 0).map_err(StoreError::from))
            .collect()
    }

    fn migrator(&self) -> &'static Migrator {
        match self.inner.dialect {
            Dialect::Postgres => &PG_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        }
    }

    /// Begins a transaction on the primary. With `money` set and
    /// `synchronous_commit` configured, the commit waits for that level.
    pub(crate) async fn tx(&self, money: bool) -> Result<Transaction<'static, Any>, StoreError> {
        let mut tx = self.inner.primary.begin().await?;
        if money && let Some(level) = &self.inner.synchronous_commit {
            // The level was checked against a fixed list when the configuration was read.
            sqlx::query(&format!("SET LOCAL synchronous_commit TO '{level}'"))
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Begins a transaction as the owner, on the direct connection: for
    /// administration (tokens, the region map), which the app role may
    /// only read.
    pub(crate) async fn admin_tx(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.inner.direct.begin().await?)
    }

    /// Checks that the primary answers.
    pub async fn ping_primary(&self) -> Result<(), StoreError> {
        let mut tx = self.tx(false).await?;
        sqlx::query("SELECT 1")
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks that a money transaction can commit: on PostgreSQL it takes a
    /// transaction id and commits at the money transactions' level, so a
    /// lost synchronous standby shows here as a commit that never returns.
    pub async fn ping_write(&self) -> Result<(), StoreError> {
        if self.dialect() != Dialect::Postgres {
            return self.ping_primary().await;
        }
        let mut tx = self.tx(true).await?;
        sqlx::query("SELECT CAST(pg_current_xact_id() AS TEXT)")
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The configured replicas' names.
    pub fn replica_names(&self) -> Vec<String> {
        self.inner.replicas.names()
    }

    /// Checks every replica; `(name, error)` for each that does not answer.
    pub async fn ping_replicas(&self) -> Vec<(String, Result<(), String>)> {
        self.inner.replicas.ping_all().await
    }

    /// Closes every pool.
    pub async fn close(&self) {
        self.inner.primary.close().await;
        self.inner.direct.close().await;
        self.inner.replicas.close().await;
    }
}
