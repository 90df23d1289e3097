//! The campaign cache in process memory: the embedded default's stand-in
//! for Redis, with the same rules (version-guarded writes, only active
//! campaigns, a pool and a set per advertiser).

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
    loaded: HashMap<String, Instant>,
    balances: HashMap<String, (i64, i64, Instant)>,
}

/// The in-process campaign cache.
#[derive(Default)]
pub struct MemoryCampaignCache {
    state: Mutex<State>,
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
        let s = self.state();
        let fresh = s
            .loaded
            .get(user.as_str())
            .is_some_and(|at| at.elapsed() < Duration::from_secs(LOADED_TTL_SECS));
        if !fresh {
            return Ok(None);
        }
        let ids = s.by_user.get(user.as_str()).cloned().unwrap_or_default();
        Ok(Some(
            ids.iter()
                .filter_map(|id| s.campaigns.get(id).cloned())
                .collect(),
        ))
    }

    async fn mark_loaded(&self, user: &UserId) -> Result<(), CacheError> {
        self.state().loaded.insert(user.to_string(), Instant::now());
        Ok(())
    }

    async fn pool(&self) -> Result<Vec<String>, CacheError> {
        Ok(self.state().campaigns.keys().cloned().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Campaign>, CacheError> {
        Ok(self.state().campaigns.get(id).cloned())
    }

    async fn evict(&self, id: &str, user: &str) -> Result<(), CacheError> {
        let mut s = self.state();
        s.campaigns.remove(id);
        if let Some(set) = s.by_user.get_mut(user) {
            set.remove(id);
        }
        Ok(())
    }

    async fn forget_loaded(&self) -> Result<(), CacheError> {
        self.state().loaded.clear();
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
