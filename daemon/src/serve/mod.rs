//! `serve`: prepares the backends (`bootstrap.rs`), runs the three
//! services (`listeners.rs`) and their workers (`workers.rs`), and stops
//! them gracefully on the caller's stop signals.

mod bootstrap;
mod listeners;
mod workers;

use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use walletctl_core::Backends;
use walletctl_core::ads::wallet_client::HttpBalances;

use crate::service::Service;
use crate::state::AppState;

pub use bootstrap::{Prepared, prepare};
pub use listeners::router;

/// The listeners to serve on; `None` leaves a service off.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The wallet service.
    pub wallet: Option<TcpListener>,
    /// The advertising management service.
    pub ads: Option<TcpListener>,
    /// The ad display service.
    pub display: Option<TcpListener>,
    /// The admin listener (`/metrics`, `/healthz`, no token).
    pub admin: Option<TcpListener>,
}

/// Runs the services on the given listeners until the first of `stop_signals`
/// (or its end), then says `stopping` on `/readyz` for `listen.drain_ms` (a
/// second signal cuts that short), stops accepting, lets in-flight requests
/// finish, stops the relay and closes the pools.
pub async fn serve(
    backends: Backends,
    listeners: Listeners,
    stop_signals: impl Stream<Item = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::http::telemetry::metrics_handle();
    let prepared = prepare(&backends).await?;
    // The ads service reads balances from the configured wallet service, or
    // from this process's own.
    let wallet_url = match (&backends.config.ads.wallet_url, &listeners.wallet) {
        (Some(url), _) => url.clone(),
        (None, Some(l)) => format!("http://{}", l.local_addr()?),
        (None, None) => format!("http://{}", backends.config.listen.wallet),
    };
    let balances = HttpBalances::new(&wallet_url, prepared.ads_token)
        .context("configuring the ads service's wallet client")?;
    let display = bootstrap::display(
        &backends,
        &listeners,
        prepared.display_token,
        &prepared.signing_keys,
    )?;
    let state = AppState::new(backends.clone(), Arc::new(balances), display);
    // Two stops: the workers end first, then the HTTP services. The ads
    // consumer confirms balances through this process's own wallet service,
    // which must still answer while it finishes its last event (stopped
    // together, that read failed and a funded campaign paused).
    let stop = CancellationToken::new();
    let workers_stop = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    let mut workers = tokio::task::JoinSet::new();

    let pairs = [
        (Service::Wallet, listeners.wallet),
        (Service::Ads, listeners.ads),
        (Service::Display, listeners.display),
    ];
    let on = |service: Service| pairs.iter().any(|(s, l)| *s == service && l.is_some());
    let (wallet_on, ads_on, display_on) =
        (on(Service::Wallet), on(Service::Ads), on(Service::Display));
    for (service, listener) in pairs {
        let Some(listener) = listener else { continue };
        let addr = listener.local_addr()?;
        tracing::info!(service = service.name(), %addr, "listening");
        let app = router(state.clone(), service);
        let stop = stop.clone();
        servers.spawn(async move {
            listeners::serve_http(listener, app, stop)
                .await
                .with_context(|| format!("serving {}", service.name()))
        });
    }
    if let Some(listener) = listeners.admin {
        tracing::info!(addr = %listener.local_addr()?, "admin listener (metrics)");
        let (app, stop) = (listeners::admin_router(), stop.clone());
        servers.spawn(async move {
            listeners::serve_http(listener, app, stop)
                .await
                .context("serving the admin listener")
        });
    }
    workers::spawn(
        &state,
        workers::Running {
            wallet: wallet_on,
            ads: ads_on,
            display: display_on,
        },
        &mut workers,
        &workers_stop,
    );
    watch_signals(
        stop_signals,
        state.readiness.clone(),
        Duration::from_millis(backends.config.listen.drain_ms),
        workers_stop.clone(),
    );

    // A failure anywhere stops everything, in the same order.
    let workers_ended = async {
        let result = workers::join_all(&mut workers, &workers_stop).await;
        // Workers that had nothing to do may end early: the services stop
        // only once a stop was asked for.
        workers_stop.cancelled().await;
        stop.cancel();
        result
    };
    let servers_ended = async {
        let result = workers::join_all(&mut servers, &workers_stop).await;
        // A service that ended on its own (a failure) takes the rest down.
        workers_stop.cancel();
        result
    };
    let (worked, served) = tokio::join!(workers_ended, servers_ended);
    let result = served.and(worked);
    tokio::time::timeout(Duration::from_secs(5), backends.db.close())
        .await
        .ok();
    tracing::info!("stopped");
    result
}

/// On the first of `stop_signals`: `/readyz` says `stopping` at once, the
/// services keep answering for `drain` (or until a second signal: an
/// operator who does not want to wait), then `workers_stop` is cancelled.
fn watch_signals(
    stop_signals: impl Stream<Item = ()> + Send + 'static,
    readiness: crate::http::health::ReadinessCache,
    drain: Duration,
    workers_stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut signals = std::pin::pin!(stop_signals);
        signals.next().await;
        readiness.stopping();
        if !drain.is_zero() {
            tracing::info!(
                drain_ms = drain.as_millis() as u64,
                "stopping: /readyz answers 503 while requests drain (signal again to skip)"
            );
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                Some(()) = signals.next() => {
                    tracing::info!("a second stop signal: the drain is cut short");
                }
            }
        }
        tracing::info!("shutting down: stopping the workers, then finishing in-flight requests");
        workers_stop.cancel();
    });
}
