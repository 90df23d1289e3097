//! The campaign store port and its two adapters, side by side: MongoDB
//! (`mongo.rs`, distributed mode, the store of record) and an embedded SQLite
//! file of its own (`embedded.rs`, not the wallet's database). Both pass the
//! same conformance tests.

mod embedded;
mod mongo;

use async_trait::async_trait;

pub use embedded::EmbeddedCampaigns;
pub use mongo::MongoCampaigns;

use super::assets::{Asset, AssetSource};
use super::model::Campaign;
use crate::domain::{CampaignId, UserId};

/// What can go wrong in a campaign store.
#[derive(Debug, thiserror::Error)]
pub enum CampaignStoreError {
    /// The store could not be reached in time; nothing was done.
    #[error("campaign store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an operator problem.
    #[error("campaign store error: {0}")]
    Other(String),
}

/// What an insert came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// It was new and is stored.
    New,
    /// A campaign with that id exists: here it is, unchanged.
    Exists(Box<Campaign>),
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrateReport {
    /// Indexes or migrations created now.
    pub applied: Vec<String>,
    /// Steps that do not apply here, with why.
    pub skipped: Vec<String>,
}

/// Where campaigns live (and their uploaded assets, see [`AssetSource`]).
#[async_trait]
pub trait CampaignStore: AssetSource {
    /// Creates indexes (and, on a sharded cluster, shards the collection).
    async fn migrate(&self) -> Result<MigrateReport, CampaignStoreError>;
    /// Stores a new campaign, or returns the one that has its id.
    async fn insert(&self, campaign: &Campaign) -> Result<Inserted, CampaignStoreError>;
    /// One campaign.
    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, CampaignStoreError>;
    /// An advertiser's campaigns, by id; only the active ones if `only_active`.
    async fn list(
        &self,
        user: &UserId,
        only_active: bool,
    ) -> Result<Vec<Campaign>, CampaignStoreError>;
    /// Replaces a campaign if it is still at `expected_version`; `false` if
    /// another writer got there first (read again and retry).
    async fn replace(
        &self,
        campaign: &Campaign,
        expected_version: i64,
    ) -> Result<bool, CampaignStoreError>;
    /// Every campaign with an id after `after`, by id, at most `limit`: for
    /// walking the whole store (cache rebuilds).
    async fn page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Campaign>, CampaignStoreError>;
    /// The newest wallet version whose `balance_updated` event has been applied for `user`.
    async fn wallet_version(&self, user: &UserId) -> Result<Option<i64>, CampaignStoreError>;
    /// Records that `version` of `user`'s wallet has been applied; never lowers it.
    async fn record_wallet_version(
        &self,
        user: &UserId,
        version: i64,
    ) -> Result<(), CampaignStoreError>;
    /// Stores an asset; storing the same asset again changes nothing.
    async fn put_asset(&self, asset: &Asset) -> Result<(), CampaignStoreError>;
    /// Checks the store answers.
    async fn ping(&self) -> Result<(), CampaignStoreError>;
    /// `mongodb` or `embedded_campaigns`.
    fn kind(&self) -> &'static str;
}
