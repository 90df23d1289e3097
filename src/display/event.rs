//! `ad_events`: one impression or click, as the display service publishes it
//! and billing consumes it. Keyed by campaign id, so one campaign's events
//! stay in order on one partition.

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdEventKind {
    /// The ad was shown.
    Impression,
    /// The ad was clicked.
    Click,
}

impl AdEventKind {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AdEventKind::Impression => "impression",
            AdEventKind::Click => "click",
        }
    }

    /// The prefix of its event ids.
    fn tag(self) -> &'static str {
        match self {
            AdEventKind::Impression => "imp",
            AdEventKind::Click => "clk",
        }
    }
}

/// One impression or click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdEvent {
    /// `imp:{decision}` or `clk:{decision}`: derived from the token, so a
    /// repeated beacon or click is the same event.
    pub event_id: String,
    /// Impression or click.
    pub kind: AdEventKind,
    /// The campaign shown.
    pub campaign_id: String,
    /// Its advertiser, whose wallet pays.
    pub user_id: String,
    /// The publisher's slot.
    pub slot: String,
    /// The viewer, when the publisher named one.
    #[serde(default)]
    pub viewer: Option<String>,
    /// The ad decision this event belongs to.
    pub decision_id: String,
    /// When the display service received it, ms since the epoch.
    pub occurred_at_ms: i64,
}

/// The event id of `kind` for a decision.
pub fn event_id(kind: AdEventKind, decision: &str) -> String {
    format!("{}:{decision}", kind.tag())
}
