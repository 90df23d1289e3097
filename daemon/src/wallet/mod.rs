//! The wallet service's HTTP API. Paths keep the design's
//! `GET /wallet/{userId}/balance` and `POST /wallet/{userId}/deduct`.

mod handlers;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The wallet routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/wallet/{user_id}",
            post(handlers::create).get(handlers::balance),
        )
        .route("/wallet/{user_id}/balance", get(handlers::balance))
        .route("/wallet/{user_id}/deduct", post(handlers::deduct))
        .route("/wallet/{user_id}/credit", post(handlers::credit))
        .route("/wallet/{user_id}/adjust", post(handlers::adjust))
        .route("/wallet/{user_id}/history", get(handlers::history))
}
