//! Campaigns following their advertiser's wallet: pauses and resumes from
//! `balance_updated`, the pool ad display may serve, and settling one
//! campaign against a balance read strongly.

use std::sync::atomic::Ordering;

use crate::ads::model::{Campaign, Status, StatusReason};
use crate::domain::{CampaignId, UserId};

use super::{AdsError, AdsService};

/// What applying a wallet balance came to.
#[derive(Debug, Clone, PartialEq)]
pub enum BalanceOutcome {
    /// A newer (or the same) wallet version was applied before: nothing done.
    Stale,
    /// Applied; these campaigns paused or resumed (or had their event re-published).
    Applied(Vec<Campaign>),
}

impl AdsService {
    /// Applies an advertiser's balance from `balance_updated` version
    /// `wallet_version`:
    ///
    /// - an active campaign whose smallest charge the balance cannot pay
    ///   pauses with reason `wallet_empty`, unless a strong read shows the
    ///   wallet has since been refilled (the event trailed the wallet);
    /// - a campaign paused for `wallet_empty` that it can pay again resumes,
    ///   once a strong read through the wallet service confirms the funds;
    /// - a person's pause, a spent budget or an end are left alone;
    /// - each change is published, then the version is recorded.
    ///
    /// A version at or below one recorded before changes nothing (events of
    /// one user may come twice or out of order). If the process dies after a
    /// change and before the version is recorded, the redelivered event
    /// finds the campaign already changed by this version and publishes its
    /// event again (consumers drop the duplicate by `event_id`).
    pub async fn on_balance(
        &self,
        user: &UserId,
        balance: i64,
        wallet_version: i64,
    ) -> Result<BalanceOutcome, AdsError> {
        if self
            .store
            .wallet_version(user)
            .await?
            .is_some_and(|v| v >= wallet_version)
        {
            return Ok(BalanceOutcome::Stale);
        }
        let mut touched = Vec::new();
        for c in self.store.list(user, false).await? {
            let id = CampaignId::parse(&c.campaign_id).map_err(AdsError::Invalid)?;
            let can_pay = c.can_pay(balance);
            let wallet_paused =
                c.status == Status::Paused && c.status_reason == Some(StatusReason::WalletEmpty);
            let by_this_event = c.status_wallet_version == Some(wallet_version);
            // An event can trail the wallet (a creation event, balance 0, seen
            // after the first top-up): confirm with a strong read before
            // pausing. If the wallet service cannot answer, pause anyway:
            // stopping spend when unsure is the safe side.
            let confirmed_can_pay = if c.status == Status::Active && !can_pay {
                match self.balances.balance(user).await {
                    Ok(b) => c.wallet_can_pay(b),
                    Err(e) => {
                        tracing::warn!(campaign = %id, user = %user, error = %e,
                            "could not confirm the balance; pausing the campaign to be safe");
                        false
                    }
                }
            } else {
                false
            };
            let campaign = if c.status == Status::Active && !can_pay && !confirmed_can_pay {
                let (c, changed) = self
                    .modify(&id, |c| async move {
                        Ok(
                            (c.status == Status::Active && !c.can_pay(balance)).then(|| Campaign {
                                status: Status::Paused,
                                status_reason: Some(StatusReason::WalletEmpty),
                                status_wallet_version: Some(wallet_version),
                                version: c.version + 1,
                                ..c
                            }),
                        )
                    })
                    .await?;
                changed.then_some(c)
            } else if wallet_paused && can_pay && !by_this_event {
                let confirmed = self
                    .balances
                    .balance(user)
                    .await
                    .map_err(AdsError::Wallet)?;
                if !c.wallet_can_pay(confirmed) {
                    None // the event ran ahead of what a strong read shows: a later event will resume it
                } else {
                    let (c, changed) = self
                        .modify(&id, |c| async move {
                            Ok((c.status == Status::Paused
                                && c.status_reason == Some(StatusReason::WalletEmpty))
                            .then(|| Campaign {
                                status: Status::Active,
                                status_reason: None,
                                status_wallet_version: Some(wallet_version),
                                version: c.version + 1,
                                ..c
                            }))
                        })
                        .await?;
                    changed.then_some(c)
                }
            } else if by_this_event {
                Some(c) // changed by this very event before a crash: publish again
            } else {
                None
            };
            if let Some(c) = campaign {
                self.publish(&c).await.map_err(AdsError::Events)?;
                touched.push(c);
            }
        }
        self.store
            .record_wallet_version(user, wallet_version)
            .await?;
        if let Err(e) = self
            .cache
            .put_balance(user, balance, wallet_version, self.balance_ttl_secs)
            .await
        {
            tracing::debug!(error = %e, "balance not cached");
        }
        Ok(BalanceOutcome::Applied(touched))
    }

    /// Every campaign ad display may serve: active, and (when the cache
    /// knows the advertiser's balance) payable. From the cache when it is
    /// trustworthy, else from the store.
    pub async fn serving_pool(&self) -> Result<Vec<Campaign>, AdsError> {
        let mut pool = Vec::new();
        let mut from_cache = false;
        if !self.cache_dirty() {
            match self.cache.pool().await {
                Ok(ids) => {
                    from_cache = true;
                    for id in ids {
                        match self.cache.get(&id).await {
                            Ok(Some(c)) => pool.push(c),
                            Ok(None) => {}
                            Err(_) => {
                                from_cache = false;
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    self.cache_dirty.store(true, Ordering::Release);
                    tracing::warn!(error = %e, "campaign cache unreadable; reading the pool from the store");
                }
            }
        }
        if !from_cache {
            pool.clear();
            let mut after: Option<String> = None;
            loop {
                let page = self.store.page(after.as_deref(), 500).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.campaign_id.clone());
                pool.extend(page.into_iter().filter(|c| c.status == Status::Active));
            }
        }
        let mut balances = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(pool.len());
        for c in pool {
            if c.status != Status::Active {
                continue;
            }
            let balance = match balances.get(&c.user_id) {
                Some(b) => *b,
                None => {
                    let b = match UserId::parse(&c.user_id) {
                        Ok(u) => self.cache.balance(&u).await.ok().flatten(),
                        Err(_) => None,
                    };
                    balances.insert(c.user_id.clone(), b);
                    b
                }
            };
            if balance.is_none_or(|b| c.can_pay(b)) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Brings a campaign's automatic status in line with its advertiser's
    /// balance `balance` (read strongly by the caller; `None`: no wallet): an
    /// active campaign the wallet cannot pay pauses with `wallet_empty`, one
    /// paused with `wallet_empty` that it can pay resumes. Published like the
    /// wallet-event flow's changes. `None` when nothing changed.
    pub async fn settle_wallet(
        &self,
        id: &CampaignId,
        balance: Option<i64>,
    ) -> Result<Option<Campaign>, AdsError> {
        self.modify_and_publish(id, |c| async move {
            Ok(c.follow_wallet(balance)
                .map(|(status, status_reason)| Campaign {
                    status,
                    status_reason,
                    version: c.version + 1,
                    ..c
                }))
        })
        .await
    }
}
