//! Charging an ad event exactly once, in one SQL transaction:
//!
//! 1. the campaign's counters row is created if new, then locked (a no-op
//!    `UPDATE … RETURNING`, which takes the row lock on PostgreSQL and the
//!    write lock on SQLite), so one campaign's events are billed one at a
//!    time whatever the number of billing workers;
//! 2. the event's row is looked up: an event billed before is answered from
//!    it, with nothing changed (redelivery, replay, a repeated beacon);
//! 3. the price and budgets decide the charge ([`rules::decide`]);
//! 4. the charge goes through the wallet's own money path in the same
//!    transaction, as an `ad_charge` entry with idempotency key
//!    `ad:{event_id}` under the `billing` caller; the wallet refuses what it
//!    cannot pay;
//! 5. the counters and the event's row are written.
//!
//! One commit covers the wallet, the ledger, the outbox and the billing
//! rows: no crash can charge without recording or record without charging.

use serde::Serialize;

use super::ACTOR;
use super::rules::{self, Counters, Decision, Terms, UnbilledReason};
use crate::display::AdEvent;
use crate::domain::{IdempotencyKey, UserId};
use crate::now_ms;
use crate::platform::sql::{Store, StoreError, in_tx};
use crate::wallet::{EntryKind, MoneyCommand, MoneyConn, Refusal};

/// Whether an event was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    /// Charged (possibly 0, a fraction accrued).
    Billed,
    /// Not charged; see the reason.
    Unbilled,
}

/// One ad event as billing recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// The event.
    pub event_id: String,
    /// The campaign.
    pub campaign_id: String,
    /// The advertiser.
    pub user_id: String,
    /// `impression` or `click`.
    pub kind: String,
    /// Billed or not.
    pub status: BillStatus,
    /// Minor units charged.
    pub amount: i64,
    /// Why not, when unbilled.
    pub reason: Option<UnbilledReason>,
    /// The `ad_charge` ledger entry, when something was charged.
    pub entry_id: Option<i64>,
    /// When the display service received it.
    pub occurred_at_ms: i64,
    /// When it was billed.
    pub billed_at_ms: i64,
}

/// What billing one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    /// The event's record.
    pub record: EventRecord,
    /// Whether it was billed before (nothing changed now).
    pub duplicate: bool,
    /// The campaign's counters after it.
    pub counters: Counters,
    /// Whether a budget is now spent (or refused this event): the campaign
    /// should pause with `budget_exhausted`.
    pub budget_spent: bool,
}

/// A campaign's billing totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CampaignBilling {
    /// The campaign.
    pub campaign_id: String,
    /// Impressions billed.
    pub impressions: i64,
    /// Clicks billed.
    pub clicks: i64,
    /// Minor units charged.
    pub spent: i64,
    /// Accrued thousandths of a minor unit not yet charged.
    pub remainder_milli: i64,
    /// Events not billed.
    pub unbilled: i64,
}

const COUNTER_COLUMNS: &str = "impressions, clicks, spent, remainder_milli, day, day_spent";
const EVENT_COLUMNS: &str = "event_id, campaign_id, user_id, kind, status, amount, reason, entry_id, occurred_at_ms, billed_at_ms";

type CounterRow = (i64, i64, i64, i64, i64, i64);
type EventRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

fn counters_from(r: CounterRow) -> Counters {
    Counters {
        impressions: r.0,
        clicks: r.1,
        spent: r.2,
        remainder_milli: r.3,
        day: r.4,
        day_spent: r.5,
    }
}

fn record_from(r: EventRow) -> EventRecord {
    EventRecord {
        event_id: r.0,
        campaign_id: r.1,
        user_id: r.2,
        kind: r.3,
        status: if r.4 == "billed" {
            BillStatus::Billed
        } else {
            BillStatus::Unbilled
        },
        amount: r.5,
        reason: r.6.as_deref().and_then(UnbilledReason::parse),
        entry_id: r.7,
        occurred_at_ms: r.8,
        billed_at_ms: r.9,
    }
}

impl Store {
    /// Bills one ad event exactly once (see the module's steps). `terms` is
    /// the campaign's, or `None` if it does not exist (recorded unbilled).
    pub async fn bill(&self, event: &AdEvent, terms: Option<&Terms>) -> Result<Billed, StoreError> {
        let now = now_ms();
        let today = rules::day_of(now);
        let user = UserId::parse(&event.user_id)
            .map_err(|e| StoreError::Failed(format!("ad event {}: {e}", event.event_id)))?;
        let key = IdempotencyKey::parse(&format!("ad:{}", event.event_id))
            .map_err(|e| StoreError::Failed(format!("ad event {}: {e}", event.event_id)))?;
        let lock_sql = format!(
            "UPDATE ad_billing SET updated_at_ms = updated_at_ms WHERE campaign_id = $1 RETURNING {COUNTER_COLUMNS}"
        );
        let find_sql = format!("SELECT {EVENT_COLUMNS} FROM ad_events WHERE event_id = $1");
        let (billed, changed) = in_tx!(self, money, |tx| {
            sqlx::query(
                "INSERT INTO ad_billing (campaign_id, user_id, updated_at_ms) VALUES ($1, $2, $3) ON CONFLICT (campaign_id) DO NOTHING",
            )
            .persistent(false)
            .bind(&event.campaign_id)
            .bind(&event.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let counters = counters_from(
                sqlx::query_as::<_, CounterRow>(&lock_sql)
                    .persistent(false)
                    .bind(&event.campaign_id)
                    .fetch_one(&mut *tx)
                    .await?,
            );
            let earlier = sqlx::query_as::<_, EventRow>(&find_sql)
                .persistent(false)
                .bind(&event.event_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = earlier {
                let record = record_from(row);
                let budget_spent = terms.is_some_and(|t| rules::exhausted(t, &counters, today))
                    || record.reason.is_some_and(UnbilledReason::is_budget);
                (
                    Billed {
                        record,
                        duplicate: true,
                        counters,
                        budget_spent,
                    },
                    false,
                )
            } else {
                let decision = match terms {
                    None => Decision::Refuse(UnbilledReason::CampaignUnknown),
                    Some(t) => rules::decide(event.kind, t, &counters, today),
                };
                let mut changed = false;
                let (outcome, after) = match decision {
                    Decision::Refuse(reason) => (Err(reason), counters),
                    Decision::Charge { amount: 0, next } => (Ok((0, None)), next),
                    Decision::Charge { amount, next } => {
                        let cmd = MoneyCommand {
                            user: user.clone(),
                            kind: EntryKind::AdCharge,
                            delta: -amount,
                            reason: Some(format!("{} {}", event.kind.as_str(), event.campaign_id)),
                            reference: Some(event.event_id.clone()),
                            key: key.clone(),
                            actor: ACTOR.to_owned(),
                            fence: None,
                        };
                        let (mut results, wallet_changed) =
                            tx.apply_in(self, std::slice::from_ref(&cmd)).await?;
                        changed = wallet_changed;
                        match results.pop() {
                            Some(Ok(o)) => match o.result {
                                Ok(entry) => (Ok((amount, Some(entry.id))), next),
                                Err(Refusal::InsufficientFunds { .. }) => {
                                    (Err(UnbilledReason::InsufficientFunds), counters)
                                }
                                Err(other) => {
                                    return Err(StoreError::Failed(format!(
                                        "the wallet refused an ad charge: {other:?}"
                                    )));
                                }
                            },
                            Some(Err(StoreError::WalletNotFound)) => {
                                (Err(UnbilledReason::WalletNotFound), counters)
                            }
                            Some(Err(e)) => return Err(e),
                            None => {
                                return Err(StoreError::Failed(
                                    "no answer for an ad charge".into(),
                                ));
                            }
                        }
                    }
                };
                if outcome.is_ok() {
                    sqlx::query(
                        "UPDATE ad_billing SET impressions = $1, clicks = $2, spent = $3, remainder_milli = $4, day = $5, day_spent = $6, updated_at_ms = $7 WHERE campaign_id = $8",
                    )
                    .persistent(false)
                    .bind(after.impressions)
                    .bind(after.clicks)
                    .bind(after.spent)
                    .bind(after.remainder_milli)
                    .bind(after.day)
                    .bind(after.day_spent)
                    .bind(now)
                    .bind(&event.campaign_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let record = EventRecord {
                    event_id: event.event_id.clone(),
                    campaign_id: event.campaign_id.clone(),
                    user_id: event.user_id.clone(),
                    kind: event.kind.as_str().to_owned(),
                    status: if outcome.is_ok() {
                        BillStatus::Billed
                    } else {
                        BillStatus::Unbilled
                    },
                    amount: outcome.map_or(0, |(a, _)| a),
                    reason: outcome.err(),
                    entry_id: outcome.ok().and_then(|(_, e)| e),
                    occurred_at_ms: event.occurred_at_ms,
                    billed_at_ms: now,
                };
                sqlx::query(&format!(
                    "INSERT INTO ad_events ({EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .persistent(false)
                .bind(&record.event_id)
                .bind(&record.campaign_id)
                .bind(&record.user_id)
                .bind(&record.kind)
                .bind(match record.status {
                    BillStatus::Billed => "billed",
                    BillStatus::Unbilled => "unbilled",
                })
                .bind(record.amount)
                .bind(record.reason.map(UnbilledReason::as_str))
                .bind(record.entry_id)
                .bind(record.occurred_at_ms)
                .bind(record.billed_at_ms)
                .execute(&mut *tx)
                .await?;
                let budget_spent = terms.is_some_and(|t| rules::exhausted(t, &after, today))
                    || record.reason.is_some_and(UnbilledReason::is_budget);
                (
                    Billed {
                        record,
                        duplicate: false,
                        counters: after,
                        budget_spent,
                    },
                    changed,
                )
            }
        });
        if changed {
            self.inner.outbox_notify.notify_one();
        }
        Ok(billed)
    }

    /// The recorded ad events of a campaign, oldest first, at most `limit`
    /// after event id order position `after`.
    pub async fn ad_events(
        &self,
        campaign: &str,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM ad_events WHERE campaign_id = $1 ORDER BY billed_at_ms, event_id LIMIT $2"
        );
        let rows = in_tx!(self, primary, |tx| {
            sqlx::query_as::<_, EventRow>(&sql)
                .persistent(false)
                .bind(campaign)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(rows.into_iter().map(record_from).collect())
    }

    /// A campaign's billing totals, if it has been billed at all.
    pub async fn campaign_billing(
        &self,
        campaign: &str,
    ) -> Result<Option<CampaignBilling>, StoreError> {
        const SQL: &str = "SELECT b.impressions, b.clicks, b.spent, b.remainder_milli, \
             CAST((SELECT COUNT(*) FROM ad_events e WHERE e.campaign_id = b.campaign_id AND e.status = 'unbilled') AS BIGINT) \
             FROM ad_billing b WHERE b.campaign_id = $1";
        let row = in_tx!(self, primary, |tx| {
            sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(SQL)
                .persistent(false)
                .bind(campaign)
                .fetch_optional(&mut *tx)
                .await?
        });
        Ok(row.map(|r| CampaignBilling {
            campaign_id: campaign.to_owned(),
            impressions: r.0,
            clicks: r.1,
            spent: r.2,
            remainder_milli: r.3,
            unbilled: r.4,
        }))
    }
}
