//! Read routing: a user's reads go to a replica of the user's region, picked
//! by a stable hash of the user id; replicas that fail are skipped for a
//! while; the primary is the last resort. Strong reads go to the synchronous
//! standby (committed with `remote_apply`, so never stale) or the primary.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};

use super::sessions::Sessions;
use super::{StoreError, in_tx};
use crate::config::PostgresConfig;
use crate::domain::UserId;

/// How fresh a balance read must be.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// A replica of the user's region; may trail the primary by milliseconds.
    #[default]
    Replica,
    /// The synchronous standby or the primary: reflects every acknowledged write.
    Strong,
}

/// How long a region map read from the shard table is trusted.
const ASSIGNMENT_TTL: Duration = Duration::from_secs(5);
/// Users whose region is remembered before the memory is cleared.
const REGION_CACHE_MAX: usize = 1_000_000;

struct Replica {
    name: String,
    /// `replica:{name}`, as reads name where they were answered.
    source: Arc<str>,
    sessions: Arc<Sessions>,
    down_until: Mutex<Option<Instant>>,
}

/// One replica's state, for `shards status` and `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicaStatus {
    /// The replica's name in the configuration.
    pub name: String,
    /// Whether the replica is the synchronous standby.
    pub synchronous: bool,
    /// Whether it answered just now.
    pub reachable: bool,
    /// Bytes of WAL it has not replayed yet, as the primary sees it.
    pub lag_bytes: Option<i64>,
    /// How long its replay trails the primary, in milliseconds, as the primary sees it.
    pub lag_ms: Option<i64>,
    /// The regions assigned to it.
    pub regions: Vec<String>,
}

pub(crate) struct ReplicaSet {
    replicas: Vec<Replica>,
    sync_replica: Option<usize>,
    primary: Option<PgPool>,
    check: Duration,
    assignments: Mutex<RegionMap>,
    refreshing: AtomicBool,
    regions: Mutex<HashMap<String, String>>,
}

/// The region → replica indexes map, and when it was loaded.
#[derive(Default)]
struct RegionMap {
    loaded_at: Option<Instant>,
    replicas: BTreeMap<String, Vec<usize>>,
}

/// Where a read went.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) source: Arc<str>,
    via: Via,
    replica: Option<usize>,
}

/// How a read reaches its server.
#[derive(Clone)]
enum Via {
    /// A replica's own sessions: prepared statements, no transaction.
    Direct(Arc<Sessions>),
    /// The primary through PgBouncer: unprepared, inside a transaction.
    Bouncer(PgPool),
}

impl Target {
    /// The replica's index, or `None` for the primary.
    pub(crate) fn replica(&self) -> Option<usize> {
        self.replica
    }
}

impl ReplicaSet {
    /// No replicas: the embedded store reads its own file.
    pub(crate) fn embedded() -> Self {
        Self::new(Vec::new(), None, None, Duration::from_secs(1))
    }

    pub(crate) fn distributed(
        pg: &PostgresConfig,
        primary: PgPool,
        check: Duration,
    ) -> Result<Self, StoreError> {
        let mut replicas = Vec::new();
        for (name, r) in &pg.replicas {
            // Reads by key on an index: a generic plan is always right, and
            // `user_id = ANY($1)` (coalesced reads) would otherwise be
            // planned again on every execution. A stopped replica refuses at
            // once; the timeout bounds a hung one (logins, SCRAM, on a loaded
            // machine can take most of a second).
            let sessions = Sessions::new(
                r.url.expose(),
                r.pool_size,
                Some("SET plan_cache_mode = force_generic_plan"),
                Duration::from_secs(2),
            )?;
            replicas.push(Replica {
                name: name.clone(),
                source: format!("replica:{name}").into(),
                sessions,
                down_until: Mutex::new(None),
            });
        }
        let sync = pg
            .sync_replica
            .as_ref()
            .and_then(|s| replicas.iter().position(|r| &r.name == s));
        Ok(Self::new(replicas, sync, Some(primary), check))
    }

    fn new(
        replicas: Vec<Replica>,
        sync_replica: Option<usize>,
        primary: Option<PgPool>,
        check: Duration,
    ) -> Self {
        ReplicaSet {
            replicas,
            sync_replica,
            primary,
            check,
            assignments: Mutex::new(RegionMap::default()),
            refreshing: AtomicBool::new(false),
            regions: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.name.clone()).collect()
    }

    pub(crate) fn is_sync(&self, name: &str) -> bool {
        self.sync_replica
            .is_some_and(|i| self.replicas[i].name == name)
    }

    /// Remembers a user's region (it never changes), so reads route without a lookup.
    pub(crate) fn remember_region(&self, user: &str, region: &str) {
        if self.replicas.is_empty() {
            return;
        }
        let mut map = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        // Most reads find their user's region known already: no allocation.
        if map.get(user).is_some_and(|known| known == region) {
            return;
        }
        if map.len() >= REGION_CACHE_MAX {
            map.clear();
        }
        map.insert(user.to_owned(), region.to_owned());
    }

    pub(crate) fn assignments_stale(&self) -> bool {
        let guard = self.assignments.lock().unwrap_or_else(|p| p.into_inner());
        guard.loaded_at.is_none_or(|t| t.elapsed() > ASSIGNMENT_TTL)
    }

    pub(crate) fn assignments_loaded(&self) -> bool {
        self.assignments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .loaded_at
            .is_some()
    }

    pub(crate) fn begin_refresh(&self) -> bool {
        !self.replicas.is_empty() && !self.refreshing.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn set_assignments(&self, rows: &[(String, String)]) {
        let mut map: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (region, replica) in rows {
            if let Some(i) = self.replicas.iter().position(|r| &r.name == replica) {
                map.entry(region.clone()).or_default().push(i);
            }
        }
        *self.assignments.lock().unwrap_or_else(|p| p.into_inner()) = RegionMap {
            loaded_at: Some(Instant::now()),
            replicas: map,
        };
        self.refreshing.store(false, Ordering::Release);
    }

    pub(crate) fn end_refresh_failed(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    pub(crate) fn regions_of(&self, name: &str) -> Vec<String> {
        let guard = self.assignments.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .replicas
            .iter()
            .filter(|(_, idx)| idx.iter().any(|i| self.replicas[*i].name == name))
            .map(|(region, _)| region.clone())
            .collect()
    }

    fn healthy(&self, i: usize) -> bool {
        let mut down = self.replicas[i]
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *down {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                *down = None;
                true
            }
            None => true,
        }
    }

    fn mark_down(&self, i: usize) {
        *self.replicas[i]
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + self.check);
        metrics::counter!("wallet_replica_failures_total", "replica" => self.replicas[i].name.clone()).increment(1);
    }

    /// The ordered places to try for a read of `user`.
    pub(crate) fn targets(&self, user: &UserId, consistency: ReadConsistency) -> Vec<Target> {
        let mut order: Vec<usize> = Vec::new();
        match consistency {
            ReadConsistency::Strong => order.extend(self.sync_replica),
            ReadConsistency::Replica => {
                // Locks taken in this order only (regions, then assignments).
                let regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
                let assignments;
                let all: Vec<usize>;
                let assigned: &[usize] = match regions.get(user.as_str()) {
                    Some(r) => {
                        assignments = self.assignments.lock().unwrap_or_else(|p| p.into_inner());
                        assignments.replicas.get(r).map_or(&[], Vec::as_slice)
                    }
                    // Region not known yet (first read since start): every
                    // replica holds every row, so spread over all of them.
                    None => {
                        all = (0..self.replicas.len()).collect();
                        &all
                    }
                };
                if !assigned.is_empty() {
                    let start = (user.stable_hash() % assigned.len() as u64) as usize;
                    order.extend(assigned.iter().cycle().skip(start).take(assigned.len()));
                }
            }
        }
        let mut out: Vec<Target> = order
            .into_iter()
            .filter(|i| self.healthy(*i))
            .map(|i| Target {
                source: self.replicas[i].source.clone(),
                via: Via::Direct(self.replicas[i].sessions.clone()),
                replica: Some(i),
            })
            .collect();
        if let Some(primary) = &self.primary {
            static PRIMARY: LazyLock<Arc<str>> = LazyLock::new(|| "primary".into());
            out.push(Target {
                source: PRIMARY.clone(),
                via: Via::Bouncer(primary.clone()),
                replica: None,
            });
        }
        out
    }

    /// `targets` without the replicas marked down since they were chosen (a
    /// coalesced-read lane keeps its targets while reads keep coming).
    pub(crate) fn live(&self, targets: &[Target]) -> Vec<Target> {
        targets
            .iter()
            .filter(|t| t.replica.is_none_or(|i| self.healthy(i)))
            .cloned()
            .collect()
    }

    /// Runs `read` on the first target that answers; its flag says whether
    /// the statement may be prepared and cached (not through PgBouncer). Connection failures on a
    /// replica mark it down and move on; any other error is returned.
    pub(crate) async fn read<T>(
        &self,
        targets: Vec<Target>,
        read: impl for<'c> Fn(&'c mut PgConnection, bool) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<(T, String), StoreError> {
        let mut last = None;
        for target in targets {
            match run_on(&target, &read).await {
                Ok(v) => return Ok((v, target.source.to_string())),
                Err(e) if is_connection_error(&e) && target.replica.is_some() => {
                    if let Some(i) = target.replica {
                        tracing::warn!(replica = %self.replicas[i].name, error = %e, "replica read failed; trying the next");
                        self.mark_down(i);
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .map(StoreError::from)
            .unwrap_or_else(|| StoreError::Unavailable("no database to read from".into())))
    }

    pub(crate) async fn ping_all(&self) -> Vec<(String, Result<(), String>)> {
        let checks = self.replicas.iter().enumerate().map(|(i, r)| async move {
            let res = async {
                let mut session = r.sessions.get().await?;
                let done = sqlx::query("SELECT 1")
                    .persistent(false)
                    .execute(session.conn())
                    .await;
                session.keep_if(done).map(|_| ())
            }
            .await;
            if res.is_err() {
                self.mark_down(i);
            }
            (r.name.clone(), res.map_err(|e| e.to_string()))
        });
        futures::future::join_all(checks).await
    }

    pub(crate) async fn close(&self) {
        for r in &self.replicas {
            r.sessions.close().await;
        }
    }
}

async fn run_on<T>(
    target: &Target,
    read: &(
         impl for<'c> Fn(&'c mut PgConnection, bool) -> BoxFuture<'c, Result<T, sqlx::Error>> + ?Sized
     ),
) -> Result<T, sqlx::Error> {
    match &target.via {
        Via::Direct(sessions) => {
            // Prepared statements, one round trip, no re-parse.
            let mut session = sessions.get().await?;
            let v = read(session.conn(), true).await;
            session.keep_if(v)
        }
        Via::Bouncer(pool) => {
            // PgBouncer in transaction mode: keep the statement inside one transaction.
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin().await?;
            let v = read(&mut tx, false).await?;
            tx.commit().await?;
            Ok(v)
        }
    }
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57") || c.starts_with("08")))
}

/// The read routing's region map, reloaded from `shard_assignments` (which
/// the shard store writes).
impl super::Db {
    /// The stored map's rows: `(region, replica)`.
    pub(crate) async fn assignment_rows(&self) -> Result<Vec<(String, String)>, StoreError> {
        const SQL: &str = "SELECT region, replica FROM shard_assignments ORDER BY region, replica";
        Ok(in_tx!(self, primary, |tx| {
            sqlx::query_as::<_, (String, String)>(SQL)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
        }))
    }

    /// Reloads the map from the primary now.
    pub async fn refresh_assignments(&self) -> Result<(), StoreError> {
        if !self.replicas().begin_refresh() {
            return Ok(());
        }
        match self.assignment_rows().await {
            Ok(rows) => {
                self.replicas().set_assignments(&rows);
                Ok(())
            }
            Err(e) => {
                self.replicas().end_refresh_failed();
                Err(e)
            }
        }
    }

    /// Reloads a stale region map: inline the first time (there is nothing
    /// to route by yet), in the background afterwards, so that a slow or
    /// unreachable primary never holds up a replica read.
    pub(crate) async fn refresh_assignments_if_stale(&self) {
        if !self.replicas().assignments_stale() {
            return;
        }
        let db = self.clone();
        let refresh = async move {
            if let Err(e) = db.refresh_assignments().await {
                tracing::warn!(error = %e, "could not reload the region map; keeping the last one");
            }
        };
        if self.replicas().assignments_loaded() {
            tokio::spawn(refresh);
        } else {
            refresh.await;
        }
    }
}
