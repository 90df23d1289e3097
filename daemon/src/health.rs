//! `/healthz` (the process runs), `/readyz` (each backend the service uses
//! answers; 503 naming the ones that do not) and `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use walletctl_core::Probe;
use walletctl_core::backends::Need;

use crate::server::Service;
use crate::state::AppState;

/// The health routes of `service`.
pub fn routes(service: Service) -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/healthz",
            get(move || async move { Json(json!({ "status": "ok", "service": service.name() })) }),
        )
        .route(
            "/readyz",
            get(move |state: State<AppState>| readyz(state, service)),
        )
        .route("/metrics", get(metrics))
}

/// What each service needs to be ready.
pub async fn probes(state: &AppState, service: Service) -> Vec<Probe> {
    let b = &state.backends;
    let mut out = Vec::new();
    match service {
        Service::Wallet => {
            // Redis and the event log are optional: deductions go on without
            // the lock, and the outbox holds events until the log is back.
            out.extend(b.probe_store().await);
            out.extend(b.probe_redis(Need::Optional).await);
            out.push(b.probe_events(Need::Optional).await);
        }
        Service::Ads => {
            match b.probe_mongo(Need::Required).await {
                Some(p) => out.push(p),
                None => out.extend(b.probe_store().await.into_iter().take(1)),
            }
            out.extend(b.probe_redis(Need::Required).await);
            out.push(b.probe_events(Need::Required).await);
        }
        Service::Display => {
            out.push(b.probe_events(Need::Required).await);
        }
    }
    out
}

async fn readyz(State(state): State<AppState>, service: Service) -> Response {
    let checks = probes(&state, service).await;
    let ready = checks.iter().all(|p| p.ok || !p.required);
    let degraded = checks.iter().any(|p| !p.ok);
    for p in checks.iter().filter(|p| !p.ok) {
        tracing::warn!(service = service.name(), backend = %p.name, error = p.error.as_deref().unwrap_or(""), "backend not answering");
    }
    let status = match (ready, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({ "status": status, "service": service.name(), "checks": checks })),
    )
        .into_response()
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
        .into_response()
}
