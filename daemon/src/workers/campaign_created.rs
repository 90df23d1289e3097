//! Ingests campaigns from the `campaign_created` topic (other services'
//! campaign tools). Ingest is idempotent by campaign id: the same campaign
//! twice is one campaign. An event that cannot be ingested (not JSON, an
//! invalid field, an id taken by another definition) goes to
//! `campaign_created.dead` with its reason (a bounded dead letter: at most
//! 16 KiB of the original, with its size, SHA-256, partition and offset),
//! and the consumer moves on: it never crashes or stalls on one. A store that does not answer is retried
//! before the next event, so nothing is skipped for want of a database.

use tokio_util::sync::CancellationToken;
use walletctl_core::ads::{AdsError, CampaignInput, NewCampaign};
use walletctl_core::events::dead_letter::DeadLetter;
use walletctl_core::events::{Message, Record, topic};

use crate::state::AppState;

/// The consumer group every ads instance joins for ingest.
pub const GROUP: &str = "walletctl-ads-ingest";

/// Consumes until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let events = state.backends.events.clone();
    super::consumer::consume(&*events, &stop, GROUP, topic::CAMPAIGN_CREATED, |m| {
        let state = state.clone();
        async move { ingest(&state, &m).await }
    })
    .await;
}

/// Ingests one event; `Err` only for what a retry can fix.
async fn ingest(state: &AppState, message: &Message) -> anyhow::Result<()> {
    let input: CampaignInput = match serde_json::from_str(&message.payload) {
        Ok(i) => i,
        Err(e) => return dead(state, message, "malformed", &e.to_string()).await,
    };
    let new = match NewCampaign::parse(input) {
        Ok(n) => n,
        Err(e) => return dead(state, message, "invalid", &e.to_string()).await,
    };
    match state.ads.create(new).await {
        Ok(created) => {
            let result = match created {
                walletctl_core::ads::Created::New(_) => "created",
                walletctl_core::ads::Created::Existing(_) => "duplicate",
            };
            metrics::counter!("ads_campaigns_ingested_total", "result" => result).increment(1);
            Ok(())
        }
        Err(AdsError::Exists(existing)) => {
            let why = format!(
                "campaign {} exists with another definition (version {})",
                existing.campaign_id, existing.version
            );
            dead(state, message, "campaign_exists", &why).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Sends an event that cannot be ingested to the dead-letter topic.
async fn dead(
    state: &AppState,
    message: &Message,
    reason: &str,
    error: &str,
) -> anyhow::Result<()> {
    metrics::counter!("ads_campaigns_ingested_total", "result" => "dead_letter").increment(1);
    tracing::warn!(
        reason,
        error,
        offset = message.offset,
        "campaign_created: dead-lettered"
    );
    // Bounded whatever the message held, so it always fits the producer's
    // limit and ingest moves past any single message.
    let payload = DeadLetter::of(message, reason, error, walletctl_core::now_ms()).to_json();
    state
        .backends
        .events
        .publish(&[Record {
            topic: topic::CAMPAIGN_CREATED_DEAD,
            key: &message.key,
            payload: &payload,
        }])
        .await?;
    Ok(())
}
