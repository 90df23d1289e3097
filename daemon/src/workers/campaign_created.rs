//! Ingests campaigns from the `campaign_created` topic (other services'
//! campaign tools). Ingest is idempotent by campaign id: the same campaign
//! twice is one campaign. An event that cannot be ingested (not JSON, an
//! invalid field, an id taken by another definition) goes to
//! `campaign_created.dead` with its reason, and the consumer moves on: it
//! never crashes or stalls on one. A store that does not answer is retried
//! before the next event, so nothing is skipped for want of a database.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use walletctl_core::ads::{AdsError, CampaignInput, NewCampaign};
use walletctl_core::events::{Message, Record, topic};

use crate::state::AppState;

/// The consumer group every ads instance joins for ingest.
pub const GROUP: &str = "walletctl-ads-ingest";

/// Consumes until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let events = &state.backends.events;
        let sub = match events.ensure_topics().await {
            Ok(()) => events.subscribe(GROUP, topic::CAMPAIGN_CREATED).await,
            Err(e) => Err(e),
        };
        let mut sub = match sub {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, "cannot join the campaign_created consumer group yet");
                if pause(&stop, &mut failures).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                m = sub.next() => m,
            };
            let Ok(message) = message else { break };
            loop {
                let span = tracing::info_span!(
                    "campaign_created",
                    partition = message.partition,
                    offset = message.offset
                );
                match ingest(&state, &message).instrument(span).await {
                    Ok(()) => {
                        failures = 0;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, offset = message.offset, "campaign_created: will retry");
                        if pause(&stop, &mut failures).await {
                            return;
                        }
                    }
                }
            }
            if let Err(e) = sub.commit(&message).await {
                tracing::warn!(error = %e, "campaign_created: committing the offset failed");
            }
        }
        if pause(&stop, &mut failures).await {
            return;
        }
    }
}

async fn pause(stop: &CancellationToken, failures: &mut u32) -> bool {
    *failures = failures.saturating_add(1);
    let wait = (Duration::from_millis(100) * 2u32.saturating_pow((*failures).min(6)))
        .min(Duration::from_secs(5));
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
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
    let payload = json!({
        "reason": reason,
        "error": error,
        "topic": topic::CAMPAIGN_CREATED,
        "partition": message.partition,
        "offset": message.offset,
        "key": message.key,
        "payload": message.payload,
        "failed_at_ms": walletctl_core::now_ms(),
    })
    .to_string();
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
