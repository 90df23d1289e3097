//! The events advertising management publishes: `campaign_paused` and
//! `campaign_resumed`, keyed by campaign id so one campaign's events stay in
//! order. An event's id is the campaign id and version, so a re-published
//! event (after a crash) is recognisably the same one.

use serde::{Deserialize, Serialize};

use super::model::{Campaign, Status, StatusReason};
use crate::events::topic::{CAMPAIGN_PAUSED, CAMPAIGN_RESUMED};

/// The payload of `campaign_paused` and `campaign_resumed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignStatusChanged {
    /// `{campaign_id}:{version}`: the same for a re-published event.
    pub event_id: String,
    /// `campaign_paused` or `campaign_resumed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The campaign.
    pub campaign_id: String,
    /// Its advertiser.
    pub user_id: String,
    /// Why it paused; absent when it resumed.
    pub reason: Option<StatusReason>,
    /// The campaign version this change produced: drop older ones.
    pub campaign_version: i64,
    /// The wallet version that caused it, when a balance did.
    pub wallet_version: Option<i64>,
    /// When, ms since the epoch.
    pub occurred_at_ms: i64,
}

impl CampaignStatusChanged {
    /// The event for a campaign that has just paused or resumed; `None` for an ended one.
    pub fn of(c: &Campaign) -> Option<(&'static str, CampaignStatusChanged)> {
        let topic = match c.status {
            Status::Paused => CAMPAIGN_PAUSED,
            Status::Active => CAMPAIGN_RESUMED,
            Status::Ended => return None,
        };
        Some((
            topic,
            CampaignStatusChanged {
                event_id: format!("{}:{}", c.campaign_id, c.version),
                kind: topic.to_owned(),
                campaign_id: c.campaign_id.clone(),
                user_id: c.user_id.clone(),
                reason: c.status_reason,
                campaign_version: c.version,
                wallet_version: c.status_wallet_version,
                occurred_at_ms: crate::domain::now_ms(),
            },
        ))
    }
}
