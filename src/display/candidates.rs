//! The display service's in-process view of what may be served: the whole
//! serving pool, refreshed in the background every `candidates_ttl_ms`, and
//! each named advertiser's active campaigns, read from the management
//! service's `GET /campaigns/{userId}` and kept as briefly. A request never
//! waits on a read: it answers from what is held (an advertiser not held
//! yet is answered from the pool while its list is fetched).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::management::ManagementClient;
use crate::ads::Campaign;
use crate::domain::UserId;
use tokio_util::sync::CancellationToken;

/// The most advertisers' lists read from the management service at once;
/// past it a request is answered from the pool and no read starts.
const MAX_FETCHING: usize = 32;

/// The most advertisers' lists held at once.
const MAX_ADVERTISERS: u64 = 100_000;

/// Campaigns that may be served.
pub type CampaignList = Arc<Vec<Arc<Campaign>>>;

/// The held candidates. Cheap to clone.
#[derive(Clone)]
pub struct Candidates {
    client: ManagementClient,
    ttl: Duration,
    pool: Arc<RwLock<(Instant, CampaignList)>>,
    by_user: moka::future::Cache<UserId, (Instant, CampaignList)>,
    fetching: Arc<Mutex<HashSet<UserId>>>,
}

fn list(v: Vec<Campaign>) -> CampaignList {
    Arc::new(v.into_iter().map(Arc::new).collect())
}

impl Candidates {
    /// Candidates read through `client`, held for `ttl`.
    pub fn new(client: ManagementClient, ttl: Duration) -> Candidates {
        Candidates {
            client,
            ttl,
            pool: Arc::new(RwLock::new((Instant::now(), Arc::default()))),
            by_user: moka::future::Cache::builder()
                .max_capacity(MAX_ADVERTISERS)
                // Held a while past the TTL so a stale list can answer while it is refreshed.
                .time_to_live(ttl * 30 + Duration::from_secs(1))
                .build(),
            fetching: Arc::default(),
        }
    }

    /// The whole pool as last read.
    pub fn pool(&self) -> CampaignList {
        self.pool
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// `user`'s active campaigns as last read; refreshed in the background
    /// when older than the TTL, and taken from the pool until first read.
    pub async fn for_user(&self, user: &UserId) -> CampaignList {
        match self.by_user.get(user).await {
            Some((at, held)) => {
                if at.elapsed() >= self.ttl {
                    self.refresh_user(user);
                }
                held
            }
            None => {
                self.refresh_user(user);
                Arc::new(
                    self.pool()
                        .iter()
                        .filter(|c| c.user_id == user.as_str())
                        .cloned()
                        .collect(),
                )
            }
        }
    }

    fn refresh_user(&self, user: &UserId) {
        {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            // The ids are the caller's: a flood of made-up advertisers must
            // not become a flood of reads of the management service.
            if fetching.len() >= MAX_FETCHING {
                metrics::counter!("display_candidate_fetches_skipped_total").increment(1);
                return;
            }
            if !fetching.insert(user.clone()) {
                return; // one read at a time per advertiser
            }
        }
        let (this, user) = (self.clone(), user.clone());
        tokio::spawn(async move {
            match this.client.active_for(&user).await {
                Ok(v) => {
                    this.by_user
                        .insert(user.clone(), (Instant::now(), list(v)))
                        .await
                }
                Err(e) => {
                    metrics::counter!("display_candidate_refresh_failures_total", "what" => "advertiser").increment(1);
                    tracing::debug!(error = %e, user = %user, "advertiser's campaigns not refreshed");
                }
            }
            this.fetching
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&user);
        });
    }

    /// Reads the pool now; `false` if the management service did not answer.
    pub async fn refresh_pool(&self) -> bool {
        match self.client.pool().await {
            Ok(v) => {
                metrics::gauge!("display_pool_campaigns").set(v.len() as f64);
                *self.pool.write().unwrap_or_else(|p| p.into_inner()) = (Instant::now(), list(v));
                true
            }
            Err(e) => {
                metrics::counter!("display_candidate_refresh_failures_total", "what" => "pool")
                    .increment(1);
                tracing::warn!(error = %e, "serving pool not refreshed; serving the last one");
                false
            }
        }
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
