//! The display service's in-process view of what may be served: the whole
//! serving pool, refreshed in the background every `candidates_ttl_ms`, and
//! each named advertiser's active campaigns, read from the management
//! service's `GET /campaigns/{userId}` and kept as briefly.
//!
//! Two rules keep a pause honoured:
//! - **No list older than `max_age` decides** (`display.candidates_max_age_ms`,
//!   default three TTLs), counting from when it was read: a pool that could
//!   not be refreshed for that long serves nothing, and an advertiser's list
//!   that old is read again before the request is answered (or nothing is
//!   served).
//! - **`campaign_paused` drops a campaign at once** from every list held
//!   ([`Candidates::on_status`], fed by the display's consumer of the
//!   management service's events), and for `max_age` a read that raced the
//!   pause cannot bring back an older version; `campaign_resumed` reads the
//!   lists again.
//!
//! A fresh enough list is answered from memory; a stale one is refreshed in
//! the background. Advertisers' lists and reads in flight are bounded: the
//! ids are whatever a caller puts in `?advertiser=`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::management::ManagementClient;
use crate::ads::Campaign;
use crate::ads::events::CampaignStatusChanged;
use crate::domain::UserId;
use crate::events::topic;

/// Campaigns that may be served.
pub type CampaignList = Arc<Vec<Arc<Campaign>>>;

/// The most advertisers' lists read from the management service at once;
/// past it a request is answered from the pool and no read starts.
const MAX_FETCHING: usize = 32;

/// The most advertisers' lists held at once.
const MAX_ADVERTISERS: u64 = 100_000;

/// The most paused campaigns remembered (for `max_age`) at once.
const MAX_TOMBSTONES: u64 = 100_000;

/// The held candidates. Cheap to clone.
#[derive(Clone)]
pub struct Candidates {
    client: ManagementClient,
    ttl: Duration,
    max_age: Duration,
    pool: Arc<RwLock<(Instant, CampaignList)>>,
    by_user: moka::future::Cache<UserId, (Instant, CampaignList)>,
    fetching: Arc<Mutex<HashSet<UserId>>>,
    /// Campaigns paused recently, with the version the pause produced.
    paused: moka::sync::Cache<String, i64>,
}

impl Candidates {
    /// Candidates read through `client`, refreshed every `ttl`, and never
    /// used once older than `max_age` (at least `ttl`).
    pub fn new(client: ManagementClient, ttl: Duration, max_age: Duration) -> Candidates {
        let max_age = max_age.max(ttl);
        Candidates {
            client,
            ttl,
            max_age,
            // Nothing read yet: as old as can be, so nothing is served from it.
            pool: Arc::new(RwLock::new((
                Instant::now()
                    .checked_sub(max_age * 2)
                    .unwrap_or_else(Instant::now),
                Arc::default(),
            ))),
            by_user: moka::future::Cache::builder()
                .max_capacity(MAX_ADVERTISERS)
                .time_to_live(max_age)
                .build(),
            fetching: Arc::default(),
            paused: moka::sync::Cache::builder()
                .max_capacity(MAX_TOMBSTONES)
                .time_to_live(max_age)
                .build(),
        }
    }

    /// The oldest a list may be and still decide.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Campaigns of `v` that no recent pause has overtaken.
    fn list(&self, v: Vec<Campaign>) -> CampaignList {
        Arc::new(
            v.into_iter()
                .filter(|c| {
                    self.paused
                        .get(&c.campaign_id)
                        .is_none_or(|p| p < c.version)
                })
                .map(Arc::new)
                .collect(),
        )
    }

    /// The whole pool as last read, or nothing if that read is older than `max_age`.
    pub fn pool(&self) -> CampaignList {
        let (at, pool) = self.pool.read().unwrap_or_else(|p| p.into_inner()).clone();
        if at.elapsed() > self.max_age {
            metrics::counter!("display_stale_candidates_total", "what" => "pool").increment(1);
            return Arc::default();
        }
        pool
    }

    /// `user`'s active campaigns: as held when fresh; held but older than
    /// the TTL, refreshed in the background; older than `max_age` (or never
    /// read), read now when a read can start, else taken from the pool.
    pub async fn for_user(&self, user: &UserId) -> CampaignList {
        if let Some((at, held)) = self.by_user.get(user).await {
            if at.elapsed() < self.ttl {
                return held;
            }
            if at.elapsed() <= self.max_age {
                self.refresh_user(user);
                return held;
            }
        }
        if let Some(fresh) = self.read_user(user).await {
            return fresh;
        }
        Arc::new(
            self.pool()
                .iter()
                .filter(|c| c.user_id == user.as_str())
                .cloned()
                .collect(),
        )
    }

    /// Claims a read of `user`'s list: `false` if one is in flight or too many are.
    fn claim(&self, user: &UserId) -> bool {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        // The ids are the caller's: a flood of made-up advertisers must
        // not become a flood of reads of the management service.
        if fetching.len() >= MAX_FETCHING {
            metrics::counter!("display_candidate_fetches_skipped_total").increment(1);
            return false;
        }
        fetching.insert(user.clone())
    }

    fn release(&self, user: &UserId) {
        self.fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }

    /// Reads `user`'s list now and holds it; `None` if no read could start
    /// or the management service did not answer.
    async fn read_user(&self, user: &UserId) -> Option<CampaignList> {
        if !self.claim(user) {
            return None;
        }
        let read = self.client.active_for(user).await;
        self.release(user);
        match read {
            Ok(v) => {
                let list = self.list(v);
                self.by_user
                    .insert(user.clone(), (Instant::now(), list.clone()))
                    .await;
                Some(list)
            }
            Err(e) => {
                metrics::counter!("display_candidate_refresh_failures_total", "what" => "advertiser").increment(1);
                tracing::debug!(error = %e, user = %user, "advertiser's campaigns not read");
                None
            }
        }
    }

    fn refresh_user(&self, user: &UserId) {
        let (this, user) = (self.clone(), user.clone());
        tokio::spawn(async move { this.read_user(&user).await });
    }

    /// Reads the pool now; `false` if the management service did not answer.
    pub async fn refresh_pool(&self) -> bool {
        let started = Instant::now();
        match self.client.pool().await {
            Ok(v) => {
                metrics::gauge!("display_pool_campaigns").set(v.len() as f64);
                let list = self.list(v);
                // Counted from when the read started: the list is no newer.
                *self.pool.write().unwrap_or_else(|p| p.into_inner()) = (started, list);
                true
            }
            Err(e) => {
                metrics::counter!("display_candidate_refresh_failures_total", "what" => "pool")
                    .increment(1);
                tracing::warn!(error = %e, "serving pool not refreshed; serving the last one until it is too old");
                false
            }
        }
    }

    /// Applies a `campaign_paused` or `campaign_resumed` event: a pause
    /// drops the campaign (at or below the event's version) from every list
    /// held at once; a resume reads the pool and the advertiser's list again.
    pub async fn on_status(&self, event: &CampaignStatusChanged) {
        if event.kind == topic::CAMPAIGN_RESUMED {
            self.paused.invalidate(&event.campaign_id);
            self.refresh_pool().await;
            if let Ok(user) = UserId::parse(&event.user_id)
                && self.by_user.contains_key(&user)
            {
                self.read_user(&user).await;
            }
            return;
        }
        let newer = self
            .paused
            .get(&event.campaign_id)
            .is_some_and(|v| v >= event.campaign_version);
        if !newer {
            self.paused
                .insert(event.campaign_id.clone(), event.campaign_version);
        }
        let keep = |c: &Arc<Campaign>| {
            c.campaign_id != event.campaign_id || c.version > event.campaign_version
        };
        {
            let mut pool = self.pool.write().unwrap_or_else(|p| p.into_inner());
            if pool.1.iter().any(|c| !keep(c)) {
                pool.1 = Arc::new(pool.1.iter().filter(|c| keep(c)).cloned().collect());
            }
        }
        if let Ok(user) = UserId::parse(&event.user_id)
            && let Some((at, held)) = self.by_user.get(&user).await
            && held.iter().any(|c| !keep(c))
        {
            let list = Arc::new(held.iter().filter(|c| keep(c)).cloned().collect());
            self.by_user.insert(user, (at, list)).await;
        }
        metrics::counter!("display_campaign_status_events_total", "kind" => "paused").increment(1);
    }

    /// Refreshes the pool every TTL until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            self.refresh_pool().await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.ttl) => {}
            }
        }
    }
}
