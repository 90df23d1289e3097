//! The SQL plumbing every area shares: PostgreSQL (primary through PgBouncer,
//! replicas per region) or the embedded SQLite file, its migrations, the
//! read routing (region → replica, refreshed from `shard_assignments`), the
//! commit sessions and the read lanes. Nothing here knows an area's tables:
//! each area owns its SQL in a store of its own over a [`Db`] (the wallet's
//! `WalletStore`, billing's `BillingStore`, `TokenStore`, `AuditStore`,
//! `ShardStore`, the outbox's `Outbox`).
//!
//! Each engine has its own typed pools (`PgPool`, `SqlitePool`); nothing goes
//! through `sqlx::Any`. A statement both engines share is written once, in
//! the dialect both accept (`$N` parameters, `RETURNING`, `ON CONFLICT`),
//! inside `in_tx!`, which expands its body once per engine so that each
//! driver type-checks its own statements and rows. Where the engines differ
//! (the money path), each has its own adapter module.
//! Correctness lives in the transactions: each money movement is one with a
//! conditional update, a ledger entry, an outbox event and an idempotency
//! record. Locks and caches elsewhere only make it faster.
//!
//! PgBouncer in transaction mode hands a client's statements to whichever
//! server connection is free, so named prepared statements leak between
//! clients. Every statement on the primary therefore runs inside an explicit
//! transaction and unprepared (`persistent(false)`); see `in_tx!`.
//!
//! Pools do not ping a connection before handing it out
//! (`test_before_acquire(false)`): that would add a round trip to every
//! transaction. A dead connection fails the statement instead, which the
//! callers already handle (replica fallback, 503 from the primary).

mod error;
pub(crate) mod lanes;
mod replicas;
pub(crate) mod sessions;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::Notify;

use crate::config::Config;

pub use error::StoreError;
pub use replicas::{ReadConsistency, ReplicaStatus};
pub(crate) use replicas::{ReplicaSet, Target};

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

/// The typed pools of one engine.
pub(crate) enum Pools {
    /// Distributed mode.
    Postgres {
        /// Writes (and strong reads without a sync replica): PgBouncer in front of the primary.
        primary: PgPool,
        /// The primary itself as the owner, bypassing PgBouncer: migrations,
        /// grants, tokens, the region map, replication status.
        direct: PgPool,
    },
    /// The embedded default.
    Sqlite {
        /// The one write connection: SQLite has one writer, so writers queue
        /// in-process instead of failing with SQLITE_BUSY.
        writer: SqlitePool,
        /// Read connections.
        readers: SqlitePool,
    },
}

/// Runs `$body` in a transaction, once per engine: inside it `$tx` is a
/// concretely typed transaction (`Transaction<Postgres>` or
/// `Transaction<Sqlite>`), so each driver checks its own statements and rows.
/// `$which` picks the PostgreSQL connection: `primary` (through PgBouncer),
/// `money` (the primary, committing at the money transactions' level) or
/// `admin` (the owner's direct connection). SQLite always uses its writer.
/// `?` inside `$body` leaves the enclosing function and rolls back.
macro_rules! in_tx {
    ($store:expr, $which:ident, |$tx:ident| $body:expr) => {{
        match $store.pools() {
            $crate::platform::sql::Pools::Postgres { primary, direct } => {
                #[allow(unused_mut)]
                let mut $tx = $crate::platform::sql::in_tx!(@pg $store, $which, primary, direct);
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::platform::sql::Pools::Sqlite { writer, .. } => {
                #[allow(unused_mut)]
                let mut $tx = writer.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    }};
    (@pg $store:expr, primary, $p:ident, $d:ident) => {{
        let _ = $d;
        $p.begin().await?
    }};
    (@pg $store:expr, admin, $p:ident, $d:ident) => {{
        let _ = $p;
        $d.begin().await?
    }};
    (@pg $store:expr, money, $p:ident, $d:ident) => {{
        let _ = $d;
        $store.money_tx($p).await?
    }};
}
pub(crate) use in_tx;

/// The shared typed pool handle: pools, replicas, commit sessions and
/// migrations. Cheap to clone; every area's store holds one.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// The engine's pools.
    pools: Pools,
    /// The replica set in distributed mode (empty in the embedded default).
    replicas: ReplicaSet,
    /// `SET LOCAL synchronous_commit` for money-moving transactions.
    synchronous_commit: Option<String>,
    /// The role `serve` connects as through `url`, granted its rights by [`Db::migrate`].
    app_role: Option<String>,
    /// Woken after each commit that wrote an outbox event.
    outbox_notify: Notify,
    /// Sessions on the primary itself for group commits
    /// (`postgres.commit_url`), when configured.
    commit: Option<Arc<sessions::Sessions>>,
}

impl Db {
    /// Opens the store the configuration names, without touching the network:
    /// pools connect on first use, so a service can start and report a down
    /// backend on `/readyz` instead of refusing to start.
    pub fn open(config: &Config) -> Result<Db, StoreError> {
        let check = Duration::from_millis(config.wallet.replica_check_ms);
        let inner = match &config.postgres {
            Some(pg) => {
                let primary = PgPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(pg.pool_size)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy(pg.url.expose())?;
                let direct_url = pg.direct_url.as_ref().unwrap_or(&pg.url);
                let direct = PgPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy(direct_url.expose())?;
                let replicas = ReplicaSet::distributed(pg, primary.clone(), check)?;
                let commit = match &pg.commit_url {
                    Some(url) => Some(sessions::Sessions::new(
                        url.expose(),
                        config.wallet.max_groups_in_flight as u32 + 1,
                        None,
                        Duration::from_secs(5),
                    )?),
                    None => None,
                };
                Inner {
                    pools: Pools::Postgres { primary, direct },
                    commit,
                    replicas,
                    synchronous_commit: pg.synchronous_commit.clone(),
                    app_role: pg.app_role.clone(),
                    outbox_notify: Notify::new(),
                }
            }
            None => {
                std::fs::create_dir_all(&config.data_dir)
                    .map_err(|e| StoreError::Io(config.data_dir.clone(), e))?;
                let options = SqliteConnectOptions::from_str(&format!(
                    "sqlite://{}",
                    config.embedded_db_path().display()
                ))?
                .create_if_missing(true);
                let writer = SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with(options.clone());
                let readers = SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(4)
                    .connect_lazy_with(options);
                Inner {
                    pools: Pools::Sqlite { writer, readers },
                    replicas: ReplicaSet::embedded(),
                    synchronous_commit: None,
                    app_role: None,
                    outbox_notify: Notify::new(),
                    commit: None,
                }
            }
        };
        Ok(Db {
            inner: Arc::new(inner),
        })
    }

    /// The engine's pools (for [`in_tx!`] and the engines' own adapters).
    pub(crate) fn pools(&self) -> &Pools {
        &self.inner.pools
    }

    /// The replica set and its region map.
    pub(crate) fn replicas(&self) -> &ReplicaSet {
        &self.inner.replicas
    }

    /// The money transactions' `synchronous_commit` level, when configured.
    pub(crate) fn synchronous_commit(&self) -> Option<&str> {
        self.inner.synchronous_commit.as_deref()
    }

    /// Sessions on the primary itself for group commits, when configured.
    pub(crate) fn commit_sessions(&self) -> Option<&Arc<sessions::Sessions>> {
        self.inner.commit.as_ref()
    }

    /// Wakes the outbox relay: call after a commit that wrote an outbox event.
    pub(crate) fn outbox_written(&self) {
        self.inner.outbox_notify.notify_one();
    }

    /// Resolves at the next [`Db::outbox_written`] (or at once if one is pending).
    pub(crate) async fn outbox_wait(&self) {
        self.inner.outbox_notify.notified().await;
    }

    /// The engine behind this store.
    pub fn dialect(&self) -> Dialect {
        match self.inner.pools {
            Pools::Postgres { .. } => Dialect::Postgres,
            Pools::Sqlite { .. } => Dialect::Sqlite,
        }
    }

    /// Applies pending migrations; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let before = self.applied_migrations().await.unwrap_or_default().len();
        match &self.inner.pools {
            Pools::Postgres { direct, .. } => PG_MIGRATIONS.run(direct).await?,
            Pools::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
        }
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
        let Pools::Postgres { direct, .. } = &self.inner.pools else {
            return Ok(());
        };
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
            "GRANT SELECT, INSERT ON ad_events TO {r}",
            "GRANT SELECT, INSERT, UPDATE ON ad_billing TO {r}",
            "GRANT USAGE ON SEQUENCE ledger_entries_id_seq, audit_log_id_seq, outbox_id_seq TO {r}",
        ];
        let mut tx = direct.begin().await?;
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
        let migrator = match self.dialect() {
            Dialect::Postgres => &PG_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        Ok(migrator
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
        const SQL: &str =
            "SELECT version FROM _sqlx_migrations WHERE success = true ORDER BY version";
        Ok(in_tx!(self, admin, |tx| {
            sqlx::query_scalar::<_, i64>(SQL)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
        }))
    }

    /// Begins a PostgreSQL transaction on the primary that commits at the
    /// money transactions' `synchronous_commit` level, when one is configured.
    pub(crate) async fn money_tx(
        &self,
        primary: &PgPool,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = primary.begin().await?;
        if let Some(level) = &self.inner.synchronous_commit {
            // The level was checked against a fixed list when the configuration was read.
            sqlx::query(&format!("SET LOCAL synchronous_commit TO '{level}'"))
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Checks that the primary answers.
    pub async fn ping_primary(&self) -> Result<(), StoreError> {
        in_tx!(self, primary, |tx| {
            sqlx::query("SELECT 1")
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Checks that a money transaction can commit: on PostgreSQL it takes a
    /// transaction id and commits at the money transactions' level, so a
    /// lost synchronous standby shows here as a commit that never returns.
    pub async fn ping_write(&self) -> Result<(), StoreError> {
        let Pools::Postgres { primary, .. } = &self.inner.pools else {
            return self.ping_primary().await;
        };
        let mut tx = self.money_tx(primary).await?;
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
        match &self.inner.pools {
            Pools::Postgres { primary, direct } => {
                primary.close().await;
                direct.close().await;
                if let Some(commit) = &self.inner.commit {
                    commit.close().await;
                }
            }
            Pools::Sqlite { writer, readers } => {
                writer.close().await;
                readers.close().await;
            }
        }
        self.inner.replicas.close().await;
    }
}
