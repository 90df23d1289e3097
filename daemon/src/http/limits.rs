//! Limits that make load and abuse degrade cleanly instead of piling up:
//! a deadline on every request, a deadline on reading request headers, and
//! a cap on request bodies.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a client may take to send its request headers before the
/// connection is closed (slow-header clients hold no worker for longer).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers `503 outcome_unknown` when a request takes longer than its
/// deadline. A money command already handed to the wallet service runs in a
/// task of its own and still completes; the client retries with the same
/// `Idempotency-Key` to learn how.
pub async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            metrics::counter!("http_request_timeouts_total").increment(1);
            ApiError::outcome_unknown("the request took longer than its deadline").into_response()
        }
    }
}
