//! The HTTP side of `serve`: each service's router (its routes, health,
//! the edge middleware, limits, tracing, panics as 500) and the accept loop
//! that serves it until stopped.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::trace::TraceLayer;

use crate::http::edge::{Edge, edge};
use crate::http::error::{ApiError, not_found};
use crate::http::limits;
use crate::service::Service;
use crate::state::AppState;

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

/// The admin listener's router: `/metrics` (one registry for the whole
/// process, every service's series) and `/healthz`, with no token. It
/// binds to loopback by default (`listen.admin`).
pub fn admin_router() -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(crate::http::health::metrics))
        .route(
            "/healthz",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({ "status": "ok", "service": "admin" }))
            }),
        )
        .fallback(not_found)
        .layer(TraceLayer::new_for_http().on_failure(log_failure))
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

/// Accepts connections until `stop`, then lets open requests finish.
///
/// axum's own `serve` sets no timer, so a client could hold a connection by
/// sending its headers slowly; this loop sets [`limits::HEADER_READ_TIMEOUT`].
pub(super) async fn serve_http(
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
