//! What billing records: each ad event's outcome, and each campaign's totals.

use serde::Serialize;

use super::rules::{Counters, UnbilledReason};

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
    /// Events not billed, by reason (`insufficient_funds`, `campaign_paused`…).
    pub unbilled_by_reason: std::collections::BTreeMap<String, i64>,
    /// The UTC day (days since the epoch) `day_spent` counts.
    pub day: i64,
    /// Minor units charged on `day`.
    pub day_spent: i64,
}

impl CampaignBilling {
    /// Billing's counters, for the budget rules.
    pub fn counters(&self) -> Counters {
        Counters {
            impressions: self.impressions,
            clicks: self.clicks,
            spent: self.spent,
            remainder_milli: self.remainder_milli,
            day: self.day,
            day_spent: self.day_spent,
        }
    }
}
