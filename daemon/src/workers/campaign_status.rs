//! Ad display's consumer of `campaign_paused` and `campaign_resumed`, as the
//! design intends: a pause drops the campaign from every list this
//! instance holds at once, a resume reads them again (see
//! `Candidates::on_status`). Every display instance must see every event,
//! so each reads in a consumer group of its own (`display.status_group`,
//! by default named after its host and port, so a restart resumes where it
//! left). Events are applied by campaign version, so a redelivered or late
//! event changes nothing.

use tokio_util::sync::CancellationToken;
use walletctl_core::ads::events::CampaignStatusChanged;
use walletctl_core::events::{Message, topic};

use crate::state::AppState;

/// Consumes both topics until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let follow = |topic: &'static str| {
        let (state, stop) = (state.clone(), stop.clone());
        async move {
            let events = state.backends.events.clone();
            let group = state.display.status_group.to_string();
            super::consumer::consume(&*events, &stop, &group, topic, |m| {
                let state = state.clone();
                async move {
                    apply(&state, &m).await;
                    Ok(())
                }
            })
            .await;
        }
    };
    tokio::join!(
        follow(topic::CAMPAIGN_PAUSED),
        follow(topic::CAMPAIGN_RESUMED)
    );
}

async fn apply(state: &AppState, message: &Message) {
    match serde_json::from_str::<CampaignStatusChanged>(&message.payload) {
        Ok(event) => state.display.candidates.on_status(&event).await,
        Err(e) => {
            // Not ours to fix: skip it, loudly, rather than stall later events.
            metrics::counter!("display_campaign_status_events_total", "kind" => "invalid")
                .increment(1);
            tracing::error!(error = %e, topic = %message.topic, offset = message.offset, "unreadable campaign status event skipped");
        }
    }
}
