//! The one middleware every request passes through: its deadline, its
//! metrics, and the API's error body on a `405`. One layer rather than
//! three: each `axum` middleware layer costs a boxed future and a service
//! clone per request, and a deadline outside the metrics layer dropped the
//! timed-out requests from them.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, method_not_allowed};
use super::telemetry::RequestMetrics;

/// What the edge needs to know of its service.
#[derive(Clone, Copy)]
pub struct Edge {
    /// The service's name, as metrics label it.
    pub service: &'static str,
    /// How long a request may take.
    pub deadline: Duration,
}

/// Counts and times the request, and answers `503 outcome_unknown` when it
/// takes longer than its deadline. A money command already handed to the
/// wallet service runs in a task of its own and still completes; the client
/// retries with the same `Idempotency-Key` to learn how. A `405` from the
/// router gets the API's error body (axum's own has none).
pub async fn edge(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let metrics = RequestMetrics::start(edge.service, &req);
    let res = match tokio::time::timeout(edge.deadline, next.run(req)).await {
        Ok(res) => method_not_allowed(res),
        Err(_) => {
            metrics::counter!("http_request_timeouts_total").increment(1);
            ApiError::outcome_unknown("the request took longer than its deadline").into_response()
        }
    };
    metrics.finish(&res);
    res
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::Service as _;

    use super::*;
    use crate::http::telemetry::metrics_handle;

    fn app(service: &'static str) -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Edge {
                    service,
                    deadline: Duration::from_millis(50),
                },
                edge,
            ))
    }

    fn metric_line<'a>(text: &'a str, name: &str, service: &str, extra: &str) -> Option<&'a str> {
        text.lines().find(|l| {
            l.starts_with(&format!("{name}{{"))
                && l.contains(&format!("service=\"{service}\""))
                && l.contains(extra)
        })
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_answered_503_and_counted() {
        metrics_handle();
        let mut app = app("edge-deadline");
        let res = app
            .call(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "outcome_unknown", "{body}");

        let text = metrics_handle().render();
        let counted = metric_line(
            &text,
            "http_requests_total",
            "edge-deadline",
            "status=\"503\"",
        );
        assert!(
            counted.is_some_and(|l| l.ends_with(" 1")),
            "the timed-out request is counted: {text}"
        );
        let in_flight = metric_line(&text, "http_requests_in_flight", "edge-deadline", "");
        assert!(
            in_flight.is_some_and(|l| l.ends_with(" 0")),
            "and no longer in flight: {text}"
        );
    }

    #[tokio::test]
    async fn a_request_dropped_midway_leaves_nothing_in_flight() {
        metrics_handle();
        let mut app = app("edge-dropped");
        let call = app.call(Request::get("/slow").body(Body::empty()).unwrap());
        // The client goes away while the handler still sleeps.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), call)
                .await
                .is_err()
        );
        let text = metrics_handle().render();
        let in_flight = metric_line(&text, "http_requests_in_flight", "edge-dropped", "");
        assert!(
            in_flight.is_some_and(|l| l.ends_with(" 0")),
            "a dropped request is no longer in flight: {text}"
        );
    }
}
