//! Advertising management: creating campaigns (idempotent by id), reading
//! them, and changing them. Pauses and resumes keep the rules of the
//! model: a person's pause is never undone automatically, a campaign
//! resumes only when its advertiser's wallet can pay its smallest charge
//! (read strongly from the wallet service), and an ended campaign stays
//! ended. Every change is a read-modify-write guarded by the version, so
//! two writers never lose each other's change.
//!
//! Here: creating, reading and a person's changes. Changes that follow the
//! wallet are in `balances`, those that follow the budget in `budget`, and
//! the cache sync in `sync`.

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

mod balances;
mod budget;
mod next;
mod sync;

pub use balances::BalanceOutcome;
pub use sync::SyncReport;

use super::assets::Asset;
use super::cache::{CacheError, CampaignCache};
use super::events::CampaignStatusChanged;
use super::model::{
    Budget, Campaign, Creative, NewCampaign, Pricing, Schedule, Status, StatusReason,
};
use super::store::{CampaignStore, CampaignStoreError, Inserted};
use super::wallet_client::{BalanceError, Balances};
use crate::domain::{CampaignId, ParseError, UserId};
use crate::events::{EventError, EventLog, Record};

/// How often a version conflict (a writer in another instance) is retried
/// before giving up.
const RETRIES: usize = 16;

/// Updates of one campaign within this instance take turns on one of these
/// (picked by a hash of its id), so they never race each other; the version
/// guard is what keeps writers in different instances apart.
const STRIPES: usize = 64;

/// Why a campaign operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdsError {
    /// No campaign with that id.
    #[error("campaign not found")]
    NotFound,
    /// A campaign with that id exists with another definition.
    #[error("a campaign with this id exists with another definition")]
    Exists(Box<Campaign>),
    /// A field is invalid.
    #[error("{0}")]
    Invalid(ParseError),
    /// The campaign has ended: it cannot resume or change.
    #[error("the campaign has ended")]
    Ended,
    /// Resuming needs funds the advertiser's wallet does not have.
    #[error("the advertiser's wallet cannot pay this campaign's smallest charge")]
    WalletCannotPay {
        /// The balance read, or `None` if the advertiser has no wallet.
        balance: Option<i64>,
        /// The smallest charge.
        needed: i64,
    },
    /// Its budget is spent: raise the budget to resume.
    #[error("the campaign's budget is spent")]
    BudgetExhausted,
    /// The wallet service could not confirm the funds.
    #[error("{0}")]
    Wallet(BalanceError),
    /// The event log refused a pause or resume event.
    #[error("{0}")]
    Events(EventError),
    /// The cache could not be synced.
    #[error("{0}")]
    Cache(CacheError),
    /// The store failed.
    #[error("{0}")]
    Store(CampaignStoreError),
    /// Other writers kept changing the campaign.
    #[error("the campaign kept changing; retry")]
    Contended,
}

impl From<CampaignStoreError> for AdsError {
    fn from(e: CampaignStoreError) -> Self {
        AdsError::Store(e)
    }
}

/// What a create came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Stored now.
    New(Campaign),
    /// The same definition was created before: this is it.
    Existing(Campaign),
}

/// Fields to change; absent ones stay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// A new name.
    pub name: Option<String>,
    /// New pricing.
    pub pricing: Option<Pricing>,
    /// New budgets.
    pub budget: Option<Budget>,
    /// A new creative.
    pub creative: Option<Creative>,
    /// New targeting, replacing the old whole.
    pub targeting: Option<serde_json::Value>,
    /// New metadata, replacing the old whole.
    pub metadata: Option<serde_json::Value>,
    /// A new schedule (`Some(None)` removes it).
    pub schedule: Option<Option<Schedule>>,
}

/// A change to a campaign.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A person pauses it; nothing resumes it but a person.
    Pause,
    /// A person resumes it, if its wallet can pay.
    Resume,
    /// A person changes fields.
    Change(Box<Changes>),
}

/// The advertising management service. Cheap to clone.
#[derive(Clone)]
pub struct AdsService {
    store: Arc<dyn CampaignStore>,
    balances: Arc<dyn Balances>,
    events: Arc<dyn EventLog>,
    cache: Arc<dyn CampaignCache>,
    /// Set when a cache write may have been lost (or at start): reads skip
    /// the cache until a rebuild from the store has run.
    cache_dirty: Arc<AtomicBool>,
    balance_ttl_secs: u64,
    stripes: Arc<Vec<tokio::sync::Mutex<()>>>,
}

impl AdsService {
    /// The service over a store, a way to read balances, and the event log
    /// its pauses and resumes are published to.
    pub fn new(
        store: Arc<dyn CampaignStore>,
        balances: Arc<dyn Balances>,
        events: Arc<dyn EventLog>,
        cache: Arc<dyn CampaignCache>,
        balance_ttl_secs: u64,
    ) -> AdsService {
        AdsService {
            store,
            balances,
            events,
            cache,
            cache_dirty: Arc::new(AtomicBool::new(true)),
            balance_ttl_secs,
            stripes: Arc::new((0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect()),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn CampaignStore> {
        &self.store
    }

    /// The cache of active campaigns.
    pub fn cache(&self) -> &Arc<dyn CampaignCache> {
        &self.cache
    }

    /// Whether the cache may be wrong and waits for a rebuild.
    pub fn cache_dirty(&self) -> bool {
        self.cache_dirty.load(Ordering::Acquire)
    }

    /// Writes a campaign's new state to the cache after the store has it.
    /// A failure marks the cache dirty: it is rebuilt, never left wrong.
    async fn cache_put(&self, c: &Campaign) {
        if let Err(e) = self.cache.put(c, false).await {
            self.cache_dirty.store(true, Ordering::Release);
            metrics::counter!("ads_cache_failures_total").increment(1);
            tracing::warn!(error = %e, campaign = %c.campaign_id, "campaign cache write failed; reads use the store until it is rebuilt");
        }
    }

    /// Creates a campaign; creating the same definition again returns it.
    ///
    /// A campaign is served only once its advertiser's funds are confirmed:
    /// a strong read through the wallet service decides whether it starts
    /// active, or paused with `wallet_empty` (it then resumes by itself when
    /// the wallet can pay). If the wallet service cannot answer, nothing is
    /// created.
    pub async fn create(&self, new: NewCampaign) -> Result<Created, AdsError> {
        let mut campaign = new.clone().into_campaign();
        if let Some(existing) = self.store.get(new.id()).await? {
            return if existing.same_definition(&new) {
                Ok(Created::Existing(existing))
            } else {
                Err(AdsError::Exists(Box::new(existing)))
            };
        }
        let balance = self
            .balances
            .balance(new.user())
            .await
            .map_err(AdsError::Wallet)?;
        if !campaign.wallet_can_pay(balance) {
            campaign.status = Status::Paused;
            campaign.status_reason = Some(StatusReason::WalletEmpty);
        }
        match self.store.insert(&campaign).await? {
            Inserted::New if campaign.status == Status::Paused => {
                // A top-up whose event was consumed between the read above and
                // the insert would never resume it: read once more. Any later
                // top-up's event finds the stored campaign.
                let again = self.balances.balance(new.user()).await.ok().flatten();
                if campaign.wallet_can_pay(again) {
                    let (resumed, _) = self
                        .modify(new.id(), |c| async move {
                            Ok((c.status == Status::Paused
                                && c.status_reason == Some(StatusReason::WalletEmpty))
                            .then(|| Campaign {
                                status: Status::Active,
                                status_reason: None,
                                version: c.version + 1,
                                ..c
                            }))
                        })
                        .await?;
                    return Ok(Created::New(resumed));
                }
                self.cache_put(&campaign).await;
                Ok(Created::New(campaign))
            }
            Inserted::New => {
                self.cache_put(&campaign).await;
                Ok(Created::New(campaign))
            }
            Inserted::Exists(existing) if existing.same_definition(&new) => {
                Ok(Created::Existing(*existing))
            }
            Inserted::Exists(existing) => Err(AdsError::Exists(existing)),
        }
    }

    /// One campaign.
    pub async fn get(&self, id: &CampaignId) -> Result<Campaign, AdsError> {
        self.store.get(id).await?.ok_or(AdsError::NotFound)
    }

    /// An advertiser's campaigns: the active ones (from the cache when it
    /// holds the complete list, else from the store, filling the cache), or all
    /// (from the store).
    pub async fn list(&self, user: &UserId, all: bool) -> Result<Vec<Campaign>, AdsError> {
        if all {
            return Ok(self.store.list(user, false).await?);
        }
        if !self.cache_dirty() {
            match self.cache.active_for(user).await {
                Ok(Some(cached)) => {
                    metrics::counter!("ads_campaign_reads_total", "source" => "cache").increment(1);
                    return Ok(cached);
                }
                Ok(None) => {}
                Err(e) => {
                    self.cache_dirty.store(true, Ordering::Release);
                    tracing::warn!(error = %e, "campaign cache unreadable; reading the store");
                }
            }
        }
        metrics::counter!("ads_campaign_reads_total", "source" => "store").increment(1);
        let every = self.store.list(user, false).await?;
        if !self.cache_dirty() {
            // Every campaign, paused ones too: a guarded write removes what is no longer active.
            for c in &every {
                self.cache_put(c).await;
            }
            // An advertiser with no campaign is not marked: the ids are the
            // caller's (`/ads?advertiser=…`), and a mark per made-up id would
            // fill the cache with keys that say nothing.
            if !every.is_empty()
                && !self.cache_dirty()
                && self.cache.mark_loaded(user).await.is_err()
            {
                self.cache_dirty.store(true, Ordering::Release);
            }
        }
        Ok(every
            .into_iter()
            .filter(|c| c.status == Status::Active)
            .collect())
    }

    /// Applies a person's change; returns the campaign after it. A pause or
    /// resume is published (`campaign_paused` / `campaign_resumed`).
    pub async fn update(&self, id: &CampaignId, update: Update) -> Result<Campaign, AdsError> {
        let (campaign, _changed) = self
            .modify(id, |c| {
                let (this, update) = (self.clone(), update.clone());
                async move { this.next(&c, &update).await }
            })
            .await?;
        // A pause or resume publishes the campaign's state even when this call
        // changed nothing: a retry after a failed publish (or a repeated
        // request) sends the same event again, under the same event id.
        if matches!(update, Update::Pause | Update::Resume) {
            self.publish(&campaign).await.map_err(AdsError::Events)?;
        }
        Ok(campaign)
    }

    /// Read, change, write back if the version is unchanged; again if not.
    /// `change` answers the campaign after the change, or `None` for none.
    /// Returns the campaign as it ends up, and whether this call changed it.
    async fn modify<F, Fut>(&self, id: &CampaignId, change: F) -> Result<(Campaign, bool), AdsError>
    where
        F: Fn(Campaign) -> Fut,
        Fut: Future<Output = Result<Option<Campaign>, AdsError>>,
    {
        let stripe = (stable_hash(id.as_str()) % STRIPES as u64) as usize;
        let _turn = self.stripes[stripe].lock().await;
        for attempt in 0..RETRIES {
            if attempt > 0 {
                // Another instance wrote in between: back off a little, with jitter.
                let ms = rand::random_range(1..=(5 * attempt as u64));
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            let current = self.get(id).await?;
            let expected = current.version;
            let Some(mut next) = change(current.clone()).await? else {
                return Ok((current, false)); // already as asked
            };
            if (next.status, next.status_reason) != (current.status, current.status_reason) {
                next.status_since_ms = Some(crate::domain::now_ms());
            }
            if self.store.replace(&next, expected).await? {
                self.cache_put(&next).await;
                return Ok((next, true));
            }
        }
        Err(AdsError::Contended)
    }

    /// [`AdsService::modify`], then publishes the change: the changed
    /// campaign, or `None` when nothing changed.
    async fn modify_and_publish<F, Fut>(
        &self,
        id: &CampaignId,
        change: F,
    ) -> Result<Option<Campaign>, AdsError>
    where
        F: Fn(Campaign) -> Fut,
        Fut: Future<Output = Result<Option<Campaign>, AdsError>>,
    {
        let (c, changed) = self.modify(id, change).await?;
        if !changed {
            return Ok(None);
        }
        self.publish(&c).await.map_err(AdsError::Events)?;
        Ok(Some(c))
    }

    /// Publishes a campaign's pause or resume.
    async fn publish(&self, c: &Campaign) -> Result<(), EventError> {
        let Some((topic, event)) = CampaignStatusChanged::of(c) else {
            return Ok(());
        };
        let payload =
            serde_json::to_string(&event).map_err(|e| EventError::Other(e.to_string()))?;
        self.events
            .publish(&[Record {
                topic,
                key: &c.campaign_id,
                payload: &payload,
            }])
            .await?;
        metrics::counter!("ads_campaign_status_events_total", "topic" => topic).increment(1);
        Ok(())
    }

    /// Stores an uploaded asset and makes it the campaign's creative image.
    pub async fn upload_asset(&self, id: &CampaignId, asset: &Asset) -> Result<Campaign, AdsError> {
        self.get(id).await?; // a campaign that does not exist gets no asset
        self.store.put_asset(asset).await?;
        let asset_id = asset.id.clone();
        let (c, _) = self
            .modify(id, |c| {
                let asset_id = asset_id.clone();
                async move {
                    if c.status == Status::Ended {
                        return Err(AdsError::Ended);
                    }
                    Ok(
                        (c.creative.asset_id.as_deref() != Some(asset_id.as_str())).then(|| {
                            let mut next = c.clone();
                            next.creative.asset_id = Some(asset_id);
                            next.version += 1;
                            next
                        }),
                    )
                }
            })
            .await?;
        Ok(c)
    }
}

/// FNV-1a: a stable hash for picking a stripe.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
