//! What a person's update does to a campaign: pause, resume (only when
//! its wallet can pay and its budget is not spent) or change fields, decided
//! on the campaign as stored (`AdsService::update` writes it under its
//! version).

use super::{AdsError, AdsService, Update};
use crate::ads::model::{Campaign, Status, StatusReason, check_definition, check_name};
use crate::domain::UserId;

impl AdsService {
    /// The campaign after `update`, or `None` if nothing changes.
    pub(super) async fn next(
        &self,
        c: &Campaign,
        update: &Update,
    ) -> Result<Option<Campaign>, AdsError> {
        let mut next = c.clone();
        next.version += 1;
        match update {
            Update::Pause => match c.status {
                Status::Ended => return Err(AdsError::Ended),
                Status::Paused if c.status_reason == Some(StatusReason::Manual) => return Ok(None),
                _ => {
                    next.status = Status::Paused;
                    next.status_reason = Some(StatusReason::Manual);
                    next.status_wallet_version = None;
                }
            },
            Update::Resume => {
                match c.status {
                    Status::Ended => return Err(AdsError::Ended),
                    Status::Active => return Ok(None),
                    Status::Paused => {}
                }
                if !c.budget_can_pay() {
                    return Err(AdsError::BudgetExhausted);
                }
                let balance = self
                    .balances
                    .balance(&UserId::parse(&c.user_id).map_err(AdsError::Invalid)?)
                    .await
                    .map_err(AdsError::Wallet)?;
                if !c.wallet_can_pay(balance) {
                    return Err(AdsError::WalletCannotPay {
                        balance,
                        needed: c.min_charge(),
                    });
                }
                next.status = Status::Active;
                next.status_reason = None;
                next.status_wallet_version = None;
            }
            Update::Change(ch) => {
                if c.status == Status::Ended {
                    return Err(AdsError::Ended);
                }
                if let Some(v) = &ch.name {
                    next.name = v.clone();
                }
                if let Some(v) = &ch.pricing {
                    next.pricing = v.clone();
                }
                if let Some(v) = &ch.budget {
                    next.budget = v.clone();
                }
                if let Some(v) = &ch.creative {
                    next.creative = v.clone();
                }
                if let Some(v) = &ch.targeting {
                    next.targeting = v.clone();
                }
                if let Some(v) = &ch.metadata {
                    next.metadata = v.clone();
                }
                if let Some(v) = &ch.schedule {
                    next.schedule = v.clone();
                }
                check_name(&next.name).map_err(AdsError::Invalid)?;
                check_definition(
                    &next.pricing,
                    &next.budget,
                    &next.creative,
                    &next.targeting,
                    &next.metadata,
                    next.schedule.as_ref(),
                )
                .map_err(AdsError::Invalid)?;
                let mut unchanged = next.clone();
                unchanged.version = c.version;
                if &unchanged == c {
                    return Ok(None);
                }
            }
        }
        Ok(Some(next))
    }
}
