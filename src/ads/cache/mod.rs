//! The cache of active campaigns: Redis in distributed mode (`redis.rs`),
//! process memory in the embedded default (`memory.rs`), behind one port.
//!
//! Only active campaigns are cached: `campaign:{id}` (a hash of the
//! campaign's budget, spend, status, price, version and the whole campaign
//! as JSON), a set of active campaign ids per advertiser, and a global pool
//! of every active campaign for ad display. Every write is guarded by the
//! campaign's version (kept in `campaign_version:{id}`, which outlives the
//! hash), so a late writer can never put back an older state. The store of
//! record decides; the cache only answers faster, and is rebuilt from the
//! store whenever a write to it may have been lost.

mod memory;
mod redis;

use async_trait::async_trait;

pub use self::redis::RedisCampaignCache;
pub use memory::MemoryCampaignCache;

use super::model::Campaign;
use crate::domain::UserId;

/// How long an advertiser's cached list is trusted as complete.
pub const LOADED_TTL_SECS: u64 = 300;

/// The cache could not be used.
#[derive(Debug, thiserror::Error)]
#[error("campaign cache unavailable: {0}")]
pub struct CacheError(pub String);

/// The active campaigns cache.
#[async_trait]
pub trait CampaignCache: Send + Sync {
    /// Writes `campaign`'s state if it is newer than the cached one (or,
    /// with `force`, as new: a rebuild repairing an entry of the same
    /// version); never over a newer version, so a rebuild that read the
    /// store before a change cannot put back the older state. An active
    /// campaign is cached and in the sets, any other is removed from them.
    /// `true` if it wrote.
    async fn put(&self, campaign: &Campaign, force: bool) -> Result<bool, CacheError>;
    /// The advertiser's active campaigns, if the cache holds the complete list.
    async fn active_for(&self, user: &UserId) -> Result<Option<Vec<Campaign>>, CacheError>;
    /// Marks the advertiser's cached list complete for [`LOADED_TTL_SECS`].
    async fn mark_loaded(&self, user: &UserId) -> Result<(), CacheError>;
    /// Every campaign id in the global active pool.
    async fn pool(&self) -> Result<Vec<String>, CacheError>;
    /// The cached campaign, if it is in the pool.
    async fn get(&self, id: &str) -> Result<Option<Campaign>, CacheError>;
    /// Removes a campaign id from the pool and its advertiser's set
    /// (rebuilds), unless the cache holds a version newer than
    /// `up_to_version`: what the caller read from the store, so a change
    /// made after that read (a create, a resume) is never evicted. `true` if
    /// it removed.
    async fn evict(&self, id: &str, user: &str, up_to_version: i64) -> Result<bool, CacheError>;
    /// Forgets every "complete list" mark (after a rebuild starts).
    async fn forget_loaded(&self) -> Result<(), CacheError>;
    /// Caches an advertiser's balance for `ttl_secs`, if `version` is newer than the cached one.
    async fn put_balance(
        &self,
        user: &UserId,
        balance: i64,
        version: i64,
        ttl_secs: u64,
    ) -> Result<(), CacheError>;
    /// The cached balance, if any.
    async fn balance(&self, user: &UserId) -> Result<Option<i64>, CacheError>;
    /// Checks the cache answers.
    async fn ping(&self) -> Result<(), CacheError>;
    /// `redis` or `memory`.
    fn kind(&self) -> &'static str;
}
