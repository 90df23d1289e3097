//! `serve`: prepares the backends, runs the three services and the relay,
//! and stops them gracefully when the caller's shutdown future completes.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use walletctl_core::Backends;
use walletctl_core::domain::Scopes;

use crate::error::{ApiError, not_found};
use crate::state::AppState;

/// The largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024;

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Balances and money movements.
    Wallet,
    /// Advertising campaign management.
    Ads,
    /// Ad serving.
    Display,
}

impl Service {
    /// All three, in start order.
    pub const ALL: [Service; 3] = [Service::Wallet, Service::Ads, Service::Display];

    /// Its name in logs, metrics and `--only`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Wallet => "wallet",
            Service::Ads => "ads",
            Service::Display => "display",
        }
    }
}

/// The listeners to serve on; `None` leaves a service off.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The wallet service.
    pub wallet: Option<TcpListener>,
    /// The advertising management service.
    pub ads: Option<TcpListener>,
    /// The ad display service.
    pub display: Option<TcpListener>,
}

/// Builds one service's router.
pub fn router(state: AppState, service: Service) -> Router {
    let api = match service {
        Service::Wallet => crate::wallet::routes(),
        Service::Ads | Service::Display => Router::new(),
    };
    api.merge(crate::health::routes(service))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::telemetry::track(service.name(), req, next)
        }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("a handler panicked"))
        }))
        .with_state(state)
}

/// Migrates, seeds the region map and creates the operator token on first run.
pub async fn prepare(backends: &Backends) -> anyhow::Result<()> {
    let store = &backends.store;
    let ran = store
        .migrate()
        .await
        .context("migrating the wallet store")?;
    if ran > 0 {
        tracing::info!(migrations = ran, "applied migrations");
    }
    if let Some(pg) = &backends.config.postgres {
        store
            .seed_shards(&pg.regions)
            .await
            .context("seeding the region map")?;
    }
    if !store.any_token().await.context("looking for tokens")? {
        let token = store
            .create_token("operator", &Scopes::all())
            .await
            .context("creating the operator token")?;
        let path = backends.config.operator_token_path();
        write_secret(&path, &token.secret)
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "first run: created the operator token (all scopes); walletctl reads it from there");
    }
    Ok(())
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
}

/// Runs the services on the given listeners until `shutdown` completes, then
/// stops accepting, lets in-flight requests finish, stops the relay and
/// closes the pools.
pub async fn serve(
    backends: Backends,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::telemetry::metrics_handle();
    prepare(&backends).await?;
    let state = AppState::new(backends.clone());
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();

    let pairs = [
        (Service::Wallet, listeners.wallet),
        (Service::Ads, listeners.ads),
        (Service::Display, listeners.display),
    ];
    let wallet_on = pairs
        .iter()
        .any(|(s, l)| *s == Service::Wallet && l.is_some());
    for (service, listener) in pairs {
        let Some(listener) = listener else { continue };
        let addr = listener.local_addr()?;
        tracing::info!(service = service.name(), %addr, "listening");
        let app = router(state.clone(), service);
        let stop = stop.clone();
        tasks.spawn(async move {
            // Small JSON answers: send them now rather than waiting on Nagle.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .with_context(|| format!("serving {}", service.name()))
        });
    }
    if wallet_on {
        let (b, s) = (backends.clone(), stop.clone());
        tasks.spawn(async move {
            crate::relay::run(b, s).await;
            Ok(())
        });
    }

    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        stop_on_signal.cancel();
    });

    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                stop.cancel();
                result = Err(e);
            }
            Err(e) => {
                stop.cancel();
                result = Err(anyhow::anyhow!("a service task failed: {e}"));
            }
        }
    }
    tokio::time::timeout(Duration::from_secs(5), backends.store.close())
        .await
        .ok();
    tracing::info!("stopped");
    result
}
