//! Campaigns following their budget: what billing has charged, and the
//! pause when it is spent, and the resume once it can pay again.

use crate::ads::model::{Campaign, Status, StatusReason};
use crate::domain::{CampaignId, UserId};

use super::{AdsError, AdsService};

impl AdsService {
    /// Pauses a campaign whose budget billing found spent (reason
    /// `budget_exhausted`) and publishes it; a campaign already stopped for
    /// another reason is left as it is. Safe to repeat.
    pub async fn exhaust_budget(&self, id: &CampaignId) -> Result<Campaign, AdsError> {
        let (c, _) = self
            .modify(id, |c| async move {
                Ok((c.status == Status::Active).then(|| Campaign {
                    status: Status::Paused,
                    status_reason: Some(StatusReason::BudgetExhausted),
                    status_wallet_version: None,
                    version: c.version + 1,
                    ..c
                }))
            })
            .await?;
        if c.status_reason == Some(StatusReason::BudgetExhausted) {
            self.publish(&c).await.map_err(AdsError::Events)?;
        }
        Ok(c)
    }

    /// Resumes a campaign paused with `budget_exhausted` once its budget
    /// can pay again (a new UTC day for a daily budget, or a raised budget;
    /// the caller decides that from billing's counters). If its wallet
    /// cannot pay, it stays paused, now with `wallet_empty`, and the wallet's
    /// events resume it. Published. `None` when nothing changed.
    pub async fn resume_budget(&self, id: &CampaignId) -> Result<Option<Campaign>, AdsError> {
        self.modify_and_publish(id, |c| async move {
            if !(c.status == Status::Paused
                && c.status_reason == Some(StatusReason::BudgetExhausted))
            {
                return Ok(None);
            }
            let user = UserId::parse(&c.user_id).map_err(AdsError::Invalid)?;
            let balance = self
                .balances
                .balance(&user)
                .await
                .map_err(AdsError::Wallet)?;
            let can_pay = c.wallet_can_pay(balance);
            Ok(Some(Campaign {
                status: if can_pay {
                    Status::Active
                } else {
                    Status::Paused
                },
                status_reason: (!can_pay).then_some(StatusReason::WalletEmpty),
                status_wallet_version: None,
                version: c.version + 1,
                ..c
            }))
        })
        .await
    }

    /// Records what billing has charged a campaign; never lowers it.
    pub async fn record_spend(&self, id: &CampaignId, spent: i64) -> Result<Campaign, AdsError> {
        let (c, _) = self
            .modify(id, |c| async move {
                Ok((spent > c.spent).then(|| Campaign {
                    spent,
                    version: c.version + 1,
                    ..c
                }))
            })
            .await?;
        Ok(c)
    }
}
