//! Advertising management's consumer of `balance_updated`: pauses the
//! campaigns an advertiser's wallet can no longer pay, and resumes those it
//! can pay again (see `AdsService::on_balance`). It runs in a consumer group,
//! so instances share the partitions (each user's events go to one of them,
//! in order), and commits an offset only after the event's effect is stored
//! and published. A failing event is retried, with backoff, before the next
//! one, so no user's events are applied out of order. There is no polling:
//! the loop waits on the log.

use tokio_util::sync::CancellationToken;
use walletctl_core::ads::BalanceOutcome;
use walletctl_core::domain::UserId;
use walletctl_core::events::{Message, topic};
use walletctl_core::wallet::BalanceUpdated;

use crate::state::AppState;

/// The consumer group every ads instance joins.
pub const GROUP: &str = "walletctl-ads";

/// Consumes until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let events = state.backends.events.clone();
    super::consumer::consume(&*events, &stop, GROUP, topic::BALANCE_UPDATED, |m| {
        let state = state.clone();
        async move { handle(&state, &m).await }
    })
    .await;
}

async fn handle(state: &AppState, message: &Message) -> anyhow::Result<()> {
    let event: BalanceUpdated = match serde_json::from_str(&message.payload) {
        Ok(e) => e,
        Err(e) => {
            // Not ours to fix: skip it, loudly, rather than stall every later event.
            metrics::counter!("ads_balance_events_total", "result" => "invalid").increment(1);
            tracing::error!(error = %e, offset = message.offset, "balance_updated: unreadable event skipped");
            return Ok(());
        }
    };
    let Ok(user) = UserId::parse(&event.user_id) else {
        metrics::counter!("ads_balance_events_total", "result" => "invalid").increment(1);
        tracing::error!(user = %event.user_id, "balance_updated: invalid user id; skipped");
        return Ok(());
    };
    match state
        .ads
        .on_balance(&user, event.balance, event.version)
        .await?
    {
        BalanceOutcome::Stale => {
            metrics::counter!("ads_balance_events_total", "result" => "stale").increment(1);
        }
        BalanceOutcome::Applied(changed) => {
            metrics::counter!("ads_balance_events_total", "result" => "applied").increment(1);
            for c in changed {
                let lag = (walletctl_core::now_ms() - event.occurred_at_ms).max(0) as f64 / 1000.0;
                metrics::histogram!("ads_status_change_lag_seconds", "status" => c.status.as_str())
                    .record(lag);
                tracing::info!(campaign = %c.campaign_id, status = c.status.as_str(), wallet_version = event.version, "campaign status follows the wallet");
            }
        }
    }
    Ok(())
}
