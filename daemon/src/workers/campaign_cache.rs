//! Keeps the active-campaign cache right: whenever it may be wrong (at
//! start, or after a write to it failed, e.g. while Redis was down), this
//! loop waits until the cache answers and rebuilds it from the store. Until
//! then, campaign reads go to the store.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How often the loop looks.
const EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    loop {
        if state.ads.cache_dirty() && state.ads.cache().ping().await.is_ok() {
            match state.ads.sync(false, &|_| {}).await {
                Ok(report) => {
                    metrics::counter!("ads_cache_rebuilds_total").increment(1);
                    tracing::info!(
                        checked = report.checked,
                        missing = report.missing,
                        stale = report.stale,
                        orphaned = report.orphaned,
                        "campaign cache rebuilt from the store"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "campaign cache rebuild failed; will retry"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
