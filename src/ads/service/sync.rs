//! Keeping the Redis cache of active campaigns true to the store:
//! `walletctl campaigns sync` and the rebuild after the cache was lost.

use std::sync::atomic::Ordering;

use crate::ads::cache::CacheError;
use crate::ads::model::Status;
use crate::domain::CampaignId;

use super::{AdsError, AdsService};

/// What a cache sync found (and, unless a dry run, repaired).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Campaigns read from the store.
    pub checked: u64,
    /// Active campaigns missing from the cache.
    pub missing: u64,
    /// Cached campaigns whose cached state is not the store's.
    pub stale: u64,
    /// Cached campaigns that are not active in the store.
    pub orphaned: u64,
    /// The differences, one line each (at most 1,000).
    pub differences: Vec<String>,
    /// Whether the cache was left unchanged (`--dry-run`).
    pub dry_run: bool,
}

impl AdsService {
    /// Compares the cache with the store and, unless `dry_run`, makes it
    /// match: every active campaign cached at its store version, nothing
    /// else cached. `progress` is called with the campaigns checked so far.
    /// A full rebuild clears the dirty mark.
    pub async fn sync(
        &self,
        dry_run: bool,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SyncReport, AdsError> {
        let cache = |e: CacheError| AdsError::Cache(e);
        let mut report = SyncReport {
            dry_run,
            ..SyncReport::default()
        };
        let note = |report: &mut SyncReport, line: String| {
            if report.differences.len() < 1_000 {
                report.differences.push(line);
            }
        };
        let mut active = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.page(after.as_deref(), 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.campaign_id.clone());
            for c in &page {
                report.checked += 1;
                let cached = self.cache.get(&c.campaign_id).await.map_err(cache)?;
                if c.status == Status::Active {
                    active.insert(c.campaign_id.clone());
                    match &cached {
                        None => {
                            report.missing += 1;
                            note(
                                &mut report,
                                format!(
                                    "{}: active (v{}) but not cached",
                                    c.campaign_id, c.version
                                ),
                            );
                        }
                        Some(x) if x != c => {
                            report.stale += 1;
                            note(
                                &mut report,
                                format!(
                                    "{}: cached v{}, store v{}",
                                    c.campaign_id, x.version, c.version
                                ),
                            );
                        }
                        Some(_) => {}
                    }
                } else if let Some(x) = &cached {
                    report.orphaned += 1;
                    note(
                        &mut report,
                        format!(
                            "{}: cached as active (v{}) but {} (v{}) in the store",
                            c.campaign_id,
                            x.version,
                            c.status.as_str(),
                            c.version
                        ),
                    );
                }
                if !dry_run {
                    self.cache.put(c, true).await.map_err(cache)?;
                }
            }
            progress(report.checked);
        }
        // Cached but not active when the scan read it: read it again now. A
        // campaign created or resumed since is active now and stays; any
        // other is evicted only up to the version just read, so a change
        // made after this read is never undone.
        for id in self.cache.pool().await.map_err(cache)? {
            if active.contains(&id) {
                continue;
            }
            let cached = self.cache.get(&id).await.map_err(cache)?;
            let known = self
                .store
                .get(&CampaignId::parse(&id).map_err(AdsError::Invalid)?)
                .await?;
            match &known {
                Some(c) if c.status == Status::Active => {
                    if !dry_run {
                        self.cache.put(c, false).await.map_err(cache)?;
                    }
                    continue;
                }
                Some(_) => {}
                None => {
                    report.orphaned += 1;
                    note(&mut report, format!("{id}: cached but not in the store"));
                }
            }
            if !dry_run {
                let up_to = known.as_ref().map_or(i64::MAX, |c| c.version);
                let user = cached
                    .map(|c| c.user_id)
                    .or(known.map(|c| c.user_id))
                    .unwrap_or_default();
                self.cache.evict(&id, &user, up_to).await.map_err(cache)?;
            }
        }
        if !dry_run {
            self.cache_dirty.store(false, Ordering::Release);
        }
        Ok(report)
    }
}
