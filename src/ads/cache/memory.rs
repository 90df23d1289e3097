//! The campaign cache in process memory: the embedded default's stand-in
//! for Redis, with the same rules (version-guarded writes, only active
//! campaigns, a pool and a set per advertiser).
//!
//! Every map is bounded by what exists (campaigns, wallets) except the
//! "complete list" marks, which any caller naming an advertiser id can
//! create (`/ads?advertiser=…` reads that advertiser's list): those live in
//! a bounded cache that forgets them after `LOADED_TTL_SECS`, as Redis
//! expires its marker keys.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CacheError, CampaignCache, LOADED_TTL_SECS};
use crate::ads::model::{Campaign, Status};
use crate::domain::UserId;

#[derive(Default)]
struct State {
    versions: HashMap<String, i64>,
    campaigns: HashMap<String, Campaign>,
    by_user: HashMap<String, BTreeSet<String>>,
    balances: HashMap<String, (i64, i64, Instant)>,
}

/// The most "complete list" marks held at once.
const MAX_LOADED: u64 = 100_000;

/// The in-process campaign cache.
pub struct MemoryCampaignCache {
    state: Mutex<State>,
    /// Advertisers whose active list is complete here, for `LOADED_TTL_SECS`.
    loaded: moka::sync::Cache<String, ()>,
}

impl Default for MemoryCampaignCache {
    fn default() -> Self {
        MemoryCampaignCache {
            state: Mutex::default(),
            loaded: moka::sync::Cache::builder()
                .max_capacity(MAX_LOADED)
                .time_to_live(Duration::from_secs(LOADED_TTL_SECS))
                .build(),
        }
    }
}

impl MemoryCampaignCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CampaignCache for MemoryCampaignCache {
    async fn put(&self, c: &Campaign, force: bool) -> Result<bool, CacheError> {
        let mut s = self.state();
        if s.versions
            .get(&c.campaign_id)
            .is_some_and(|v| *v > c.version || (!force && *v == c.version))
        {
            return Ok(false);
        }
        s.versions.insert(c.campaign_id.clone(), c.version);
        let set = s.by_user.entry(c.user_id.clone()).or_default();
        if c.status == Status::Active {
            set.insert(c.campaign_id.clone());
            s.campaigns.insert(c.campaign_id.clone(), c.clone());
        } else {
            set.remove(&c.campaign_id);
            s.campaigns.remove(&c.campaign_id);
        }
        Ok(true)
    }

    async fn active_for(&self, user: &UserId) -> Result<Option<Vec<Campaign>>, CacheError> {
        if !self.loaded.contains_key(user.as_str()) {
            return Ok(None);
        }
        let s = self.state();
        let ids = s.by_user.get(user.as_str()).cloned().unwrap_or_default();
        Ok(Some(
            ids.iter()
                .filter_map(|id| s.campaigns.get(id).cloned())
                .collect(),
        ))
    }

    async fn mark_loaded(&self, user: &UserId) -> Result<(), CacheError> {
        self.loaded.insert(user.to_string(), ());
        Ok(())
    }

    async fn pool(&self) -> Result<Vec<String>, CacheError> {
        Ok(self.state().campaigns.keys().cloned().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Campaign>, CacheError> {
        Ok(self.state().campaigns.get(id).cloned())
    }

    async fn evict(&self, id: &str, user: &str, up_to_version: i64) -> Result<bool, CacheError> {
        let mut s = self.state();
        if s.versions.get(id).is_some_and(|v| *v > up_to_version) {
            return Ok(false);
        }
        s.campaigns.remove(id);
        if let Some(set) = s.by_user.get_mut(user) {
            set.remove(id);
        }
        Ok(true)
    }

    async fn forget_loaded(&self) -> Result<(), CacheError> {
        self.loaded.invalidate_all();
        Ok(())
    }

    async fn put_balance(
        &self,
        user: &UserId,
        balance: i64,
        version: i64,
        ttl_secs: u64,
    ) -> Result<(), CacheError> {
        let mut s = self.state();
        let newer = s
            .balances
            .get(user.as_str())
            .is_none_or(|(_, v, _)| version > *v);
        if newer {
            let until = Instant::now() + Duration::from_secs(ttl_secs);
            s.balances
                .insert(user.to_string(), (balance, version, until));
        }
        Ok(())
    }

    async fn balance(&self, user: &UserId) -> Result<Option<i64>, CacheError> {
        Ok(self
            .state()
            .balances
            .get(user.as_str())
            .filter(|(_, _, until)| Instant::now() < *until)
            .map(|(b, _, _)| *b))
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn made_up_advertisers_cannot_grow_the_loaded_marks_without_bound() {
        let cache = MemoryCampaignCache::default();
        let n = MAX_LOADED + 20_000;
        for i in 0..n {
            let user = UserId::parse(&format!("flood{i}")).unwrap();
            cache.mark_loaded(&user).await.unwrap();
        }
        cache.loaded.run_pending_tasks();
        assert!(
            cache.loaded.entry_count() <= MAX_LOADED,
            "{} marks held",
            cache.loaded.entry_count()
        );
        let s = cache.state();
        assert!(s.by_user.is_empty() && s.campaigns.is_empty() && s.versions.is_empty());
    }
}
