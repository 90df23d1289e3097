//! `serve`: prepares the backends, runs the three services and the workers,
//! and stops them gracefully on the caller's stop signals.

use futures::{Stream, StreamExt};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::trace::TraceLayer;
use walletctl_core::Backends;

use walletctl_core::ads::wallet_client::HttpBalances;
use walletctl_core::config::{Secret, SigningKey};
use walletctl_core::display::Signer;
use walletctl_core::display::frequency::FrequencyCap;
use walletctl_core::display::management::ManagementClient;
use walletctl_core::platform::auth::{Scope, Scopes};

use crate::http::edge::{Edge, edge};
use crate::http::error::{ApiError, not_found};
use crate::http::limits;
use crate::service::Service;
use crate::state::AppState;

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
        Service::Ads => crate::ads::routes(),
        Service::Display => crate::display::routes(),
    };
    api.merge(crate::http::health::routes(service))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Edge {
                service: service.name(),
                deadline: Duration::from_millis(state.backends.config.wallet.request_timeout_ms),
            },
            edge,
        ))
        .layer(DefaultBodyLimit::max(limits::BODY_LIMIT))
        .layer(TraceLayer::new_for_http().on_failure(log_failure))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::internal("a handler panicked"))
        }))
        .with_state(state)
}

/// Logs a failed response. A 503 is a state the answer itself states (not
/// ready, stopping, a backend down), logged at `warn` where it arises;
/// polled by a load balancer, it would otherwise be an error line per probe.
fn log_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    let latency_ms = latency.as_millis() as u64;
    match class {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(latency_ms, "answered 503");
        }
        other => tracing::error!(classification = %other, latency_ms, "response failed"),
    }
}

/// What `serve` prepared: secrets it needs beyond the configuration.
pub struct Prepared {
    /// The token the ads service reads balances with.
    pub ads_token: Secret,
    /// The token the display service reads campaigns with.
    pub display_token: Secret,
    /// The display service's signing keys (the first signs).
    pub signing_keys: Vec<SigningKey>,
}

/// Migrates both stores, seeds the region map, and creates the operator
/// token and the ads service's wallet token on first run.
pub async fn prepare(backends: &Backends) -> anyhow::Result<Prepared> {
    let store = &backends.store;
    let ran = store
        .migrate()
        .await
        .context("migrating the wallet store")?;
    if ran > 0 {
        tracing::info!(migrations = ran, "applied migrations");
    }
    // MongoDB may be down at start-up: readiness says so, and indexes are
    // created on the next start or by `walletctl migrate`.
    match backends.campaigns.migrate().await {
        Ok(report) => tracing::debug!(?report, "campaign store ready"),
        Err(e) if backends.config.mongodb.is_some() => {
            tracing::warn!(error = %e, "could not prepare the campaign store now; run `walletctl migrate` once it answers")
        }
        Err(e) => return Err(e).context("migrating the embedded campaign store"),
    }
    if let Some(pg) = &backends.config.postgres {
        store
            .seed_shards(&pg.regions)
            .await
            .context("seeding the region map")?;
    }
    if !store.any_token().await.context("looking for tokens")? {
        let token = store
            .create_token("operator", &Scopes::all(), "walletctl serve")
            .await
            .context("creating the operator token")?;
        let path = backends.config.operator_token_path();
        write_secret(&path, &token.secret)
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "first run: created the operator token (all scopes); walletctl reads it from there");
    }
    let config = &backends.config;
    let ads_token = match &config.ads.wallet_token {
        Some(t) => t.clone(),
        None => {
            service_token(
                backends,
                "ads-service",
                Scope::Read,
                &config.ads_token_path(),
            )
            .await?
        }
    };
    let display_token = match &config.display.management_token {
        Some(t) => t.clone(),
        None => {
            service_token(
                backends,
                "display-service",
                Scope::CampaignsRead,
                &config.display_token_path(),
            )
            .await?
        }
    };
    let signing_keys = if config.display.signing_keys.is_empty() {
        vec![default_signing_key(&config.display_key_path())?]
    } else {
        config.display.signing_keys.clone()
    };
    Ok(Prepared {
        ads_token,
        display_token,
        signing_keys,
    })
}

/// A service's own token with one scope, kept in the data directory at
/// `path`; created on first run.
async fn service_token(
    backends: &Backends,
    service: &str,
    scope: Scope,
    path: &std::path::Path,
) -> anyhow::Result<Secret> {
    if let Ok(secret) = std::fs::read_to_string(path) {
        return Ok(Secret::new(secret.trim()));
    }
    let name = format!(
        "{service}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let token = backends
        .store
        .create_token(&name, &Scopes::of(&[scope]), "walletctl serve")
        .await
        .with_context(|| format!("creating the {service} token"))?;
    write_secret(path, &token.secret).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(name, path = %path.display(), scope = scope.as_str(), "created a service token");
    Ok(Secret::new(token.secret))
}

/// The display service's signing key kept in the data directory
/// (`{id}:{secret}`), created on first run. Instances that do not share a
/// data directory configure `display.signing_keys` instead.
fn default_signing_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some((id, secret)) = text.trim().split_once(':')
    {
        return Ok(SigningKey {
            id: id.to_owned(),
            secret: Secret::new(secret),
        });
    }
    let id = format!("k{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_secret(path, &format!("{id}:{secret}"))
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), key = %id, "created the display service's signing key");
    Ok(SigningKey {
        id,
        secret: Secret::new(secret),
    })
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
    let display = display(
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
            serve_http(listener, app, stop)
                .await
                .with_context(|| format!("serving {}", service.name()))
        });
    }
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
    }
    if ads_on {
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

    let stop_on_signal = workers_stop.clone();
    let (readiness, drain) = (
        state.readiness.clone(),
        Duration::from_millis(backends.config.listen.drain_ms),
    );
    tokio::spawn(async move {
        let mut signals = std::pin::pin!(stop_signals);
        signals.next().await;
        // Out of the load balancer first: `/readyz` says so at once, and
        // everything keeps answering for `listen.drain_ms`, or until a
        // second signal (an operator who does not want to wait).
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
        stop_on_signal.cancel();
    });

    // A failure anywhere stops everything, in the same order.
    let workers_ended = async {
        let result = join_all(&mut workers, &workers_stop).await;
        // Workers that had nothing to do may end early: the services stop
        // only once a stop was asked for.
        workers_stop.cancelled().await;
        stop.cancel();
        result
    };
    let servers_ended = async {
        let result = join_all(&mut servers, &workers_stop).await;
        // A service that ended on its own (a failure) takes the rest down.
        workers_stop.cancel();
        result
    };
    let (worked, served) = tokio::join!(workers_ended, servers_ended);
    let result = served.and(worked);
    tokio::time::timeout(Duration::from_secs(5), backends.store.close())
        .await
        .ok();
    tracing::info!("stopped");
    result
}

/// Waits for every task of `set`; the first failure cancels `on_failure`
/// and is the result.
async fn join_all(
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

/// The display service's keys, URLs and candidate source.
fn display(
    backends: &Backends,
    listeners: &Listeners,
    token: Secret,
    keys: &[SigningKey],
) -> anyhow::Result<crate::display::Display> {
    let config = &backends.config.display;
    let addr = |l: &Option<TcpListener>, fallback: std::net::SocketAddr| {
        l.as_ref()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(fallback)
    };
    let public_url = config.public_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            addr(&listeners.display, backends.config.listen.display)
        )
    });
    let management_url = config.management_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            addr(&listeners.ads, backends.config.listen.ads)
        )
    });
    let client = ManagementClient::new(&management_url, token)
        .context("configuring the display service's management client")?;
    let trim = |s: &str| s.trim_end_matches('/').to_owned();
    Ok(crate::display::Display {
        signer: Signer::new(keys).context("the display service needs a signing key")?,
        cdn_base: trim(config.cdn_base_url.as_deref().unwrap_or(&public_url)).into(),
        public_url: trim(&public_url).into(),
        token_ttl_secs: config.token_ttl_secs as i64,
        candidates: crate::display::Candidates::new(
            client,
            Duration::from_millis(config.candidates_ttl_ms.max(10)),
        ),
        assets: crate::display::asset_cache(),
        cap: config.frequency_cap.map(|max| {
            FrequencyCap::new(
                max,
                Duration::from_secs(config.frequency_window_secs.max(1)),
                backends.redis.clone(),
            )
        }),
    })
}

/// Accepts connections until `stop`, then lets open requests finish.
///
/// axum's own `serve` sets no timer, so a client could hold a connection by
/// sending its headers slowly; this loop sets [`limits::HEADER_READ_TIMEOUT`].
async fn serve_http(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits::HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small JSON answers: send them now rather than waiting on Nagle.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
