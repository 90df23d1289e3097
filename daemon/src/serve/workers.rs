//! The background loops `serve` runs beside the services it listens for
//! (one file each under `crate::workers`), and how a failed task stops the rest.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Which services this process runs: each brings its workers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Running {
    /// The wallet service: the outbox relay, retention and reconciliation.
    pub wallet: bool,
    /// The advertising management service: the `balance_updated` and
    /// `campaign_created` consumers, the cache rebuild and billing.
    pub ads: bool,
    /// The ad display service: the candidate refresh and the consumer of
    /// campaign pauses and resumes.
    pub display: bool,
}

/// Spawns the workers of the running services into `workers`, each until
/// `workers_stop`.
pub(super) fn spawn(
    state: &AppState,
    on: Running,
    workers: &mut JoinSet<anyhow::Result<()>>,
    workers_stop: &CancellationToken,
) {
    let backends = &state.backends;
    let (ads_on, display_on, wallet_on) = (on.ads, on.display, on.wallet);
    if ads_on {
        let (st, s) = (state.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::balance_updated::run(st, s).await;
            Ok(())
        });
        let (st, s) = (state.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::campaign_cache::run(st, s).await;
            Ok(())
        });
        let (st, s) = (state.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::campaign_created::run(st, s).await;
            Ok(())
        });
        let (st, s) = (state.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::billing::run(st, s).await;
            Ok(())
        });
    }
    if display_on {
        let (c, s) = (state.display.candidates.clone(), workers_stop.clone());
        workers.spawn(async move {
            c.run(s).await;
            Ok(())
        });
        let (st, s) = (state.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::campaign_status::run(st, s).await;
            Ok(())
        });
    }
    if wallet_on {
        let (b, s) = (backends.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::gc::run(b, s).await;
            Ok(())
        });
        let (b, s) = (backends.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::reconcile::run(b, s).await;
            Ok(())
        });
        let (b, s) = (backends.clone(), workers_stop.clone());
        workers.spawn(async move {
            crate::workers::outbox_relay::run(b, s).await;
            Ok(())
        });
    }
}

/// Waits for every task of `set`; the first failure cancels `on_failure`
/// and is the result.
pub(super) async fn join_all(
    set: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    on_failure: &CancellationToken,
) -> anyhow::Result<()> {
    let mut result = Ok(());
    while let Some(joined) = set.join_next().await {
        let failed = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("a service task failed: {e}"),
        };
        on_failure.cancel();
        if result.is_ok() {
            result = Err(failed);
        }
    }
    result
}
