//! `/healthz` (the process runs), `/readyz` (each backend the service uses
//! answers; 503 naming the ones that do not, or `stopping` once a stop was
//! asked for) and `/metrics` (Prometheus).
//!
//! `/readyz` answers within [`READY_DEADLINE`] even when a backend hangs:
//! probes run concurrently, each under its own timeout. The wallet's probe
//! includes a real commit at the money transactions' level, so a lost
//! synchronous standby shows as `postgres_write` not answering. Answers are
//! kept for [`READY_CACHE`], so a load balancer polling hard costs the
//! backends nothing more. Without a valid token the answer names the
//! backends that are down but not their raw errors (which carry user names
//! and addresses).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use walletctl_core::Probe;
use walletctl_core::app::{Need, PROBE_TIMEOUT, probe};

pub use crate::http::readiness::ReadinessCache;
use crate::service::Service;
use crate::state::AppState;

/// The longest `/readyz` takes to answer.
pub const READY_DEADLINE: Duration = Duration::from_millis(1500);

/// How long a readiness answer is reused.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// The health routes of `service`.
pub fn routes(service: Service) -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/healthz",
            get(move || async move { Json(json!({ "status": "ok", "service": service.name() })) }),
        )
        .route(
            "/readyz",
            get(move |state: State<AppState>, parts: Parts| readyz(state, parts, service)),
        )
        .route("/metrics", get(metrics_with_scope))
}

/// What each service needs to be ready, probed concurrently.
pub async fn probes(state: &AppState, service: Service) -> Vec<Probe> {
    let b = &state.backends;
    let mut out = Vec::new();
    match service {
        Service::Wallet => {
            // Redis and the event log are optional: deductions go on without
            // the lock, and the outbox holds events until the log is back.
            let (store, write, redis, events) = tokio::join!(
                b.probe_store(),
                write_probe(state),
                b.probe_redis(Need::Optional),
                b.probe_events(Need::Optional)
            );
            out.extend(store);
            out.push(write);
            out.extend(redis);
            out.push(events);
        }
        Service::Ads => {
            let (campaigns, redis, events) = tokio::join!(
                b.probe_campaigns(Need::Required),
                b.probe_redis(Need::Required),
                b.probe_events(Need::Required)
            );
            out.push(campaigns);
            out.extend(redis);
            out.push(events);
        }
        Service::Display => {
            out.push(b.probe_events(Need::Required).await);
        }
    }
    out
}

/// A commit at the money level, in a task of its own that outlives the
/// deadline: if it blocks, the next probes report it without adding another.
async fn write_probe(state: &AppState) -> Probe {
    const NAME: &str = "postgres_write";
    let Some(guard) = state.readiness.try_write_probe() else {
        return Probe {
            name: NAME.into(),
            ok: false,
            required: true,
            error: Some("an earlier write probe has not committed yet: commits are blocked (is the synchronous standby down?)".into()),
        };
    };
    let store = state.backends.db.clone();
    let task = tokio::spawn(async move {
        let res = store.ping_write().await.map_err(|e| e.to_string());
        drop(guard);
        res
    });
    probe(NAME, Need::Required, async move {
        task.await
            .unwrap_or_else(|e| Err(format!("the probe failed: {e}")))
            .map_err(|e| format!("a money commit did not complete: {e}"))
    })
    .await
}

async fn readyz(State(state): State<AppState>, parts: Parts, service: Service) -> Response {
    if state.readiness.is_stopping() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "stopping", "service": service.name(), "checks": [] })),
        )
            .into_response();
    }
    let cached = state.readiness.recent(service, READY_CACHE);
    let checks = match cached {
        Some(checks) => checks,
        None => {
            let checks = tokio::time::timeout(READY_DEADLINE, probes(&state, service))
                .await
                .unwrap_or_else(|_| {
                    vec![Probe {
                        name: "readiness".into(),
                        ok: false,
                        required: true,
                        error: Some(format!(
                            "the probes did not finish within {READY_DEADLINE:?} (each has {PROBE_TIMEOUT:?})"
                        )),
                    }]
                });
            for p in checks.iter().filter(|p| !p.ok) {
                tracing::warn!(service = service.name(), backend = %p.name, error = p.error.as_deref().unwrap_or(""), "backend not answering");
            }
            state.readiness.keep(service, checks.clone());
            checks
        }
    };
    let ready = checks.iter().all(|p| p.ok || !p.required);
    let degraded = checks.iter().any(|p| !p.ok);
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
    let authenticated = match crate::http::auth::bearer(&parts) {
        Some(secret) => matches!(state.auth.check(secret).await, Ok(Some(_))),
        None => false,
    };
    let checks: Vec<Probe> = checks
        .into_iter()
        .map(|mut p| {
            if !authenticated {
                p.error = None;
            }
            p
        })
        .collect();
    (
        code,
        Json(json!({ "status": status, "service": service.name(), "checks": checks })),
    )
        .into_response()
}

/// `/metrics` on a service port: only to a token with the `metrics` scope,
/// since the series carry money totals and the display port faces the web.
async fn metrics_with_scope(
    caller: crate::http::auth::Caller,
) -> Result<Response, crate::http::error::ApiError> {
    caller.require(walletctl_core::platform::auth::Scope::Metrics)?;
    Ok(metrics().await)
}

/// The Prometheus text of every series this process records.
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::http::telemetry::metrics_handle().render(),
    )
        .into_response()
}
