//! The wallet service's HTTP API. Paths keep the design's
//! `GET /wallet/{userId}/balance` and `POST /wallet/{userId}/deduct`.

mod answers;
mod dto;
mod handlers;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The wallet service's OpenAPI document, served at `/openapi.json` and kept in `docs/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "walletctl wallet service", description = "Balances, deductions, credits, adjustments and history. See docs/api.md."),
    paths(handlers::create, handlers::wallet, handlers::balance, handlers::deduct, handlers::credit, handlers::adjust, handlers::history),
    // Bodies named only through IntoResponses are not collected on their own.
    components(schemas(
        answers::MoveResponse,
        crate::http::error::ErrorBody,
        crate::http::error::ErrorDetail,
        walletctl_core::platform::sql::ReadConsistency
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Adds the bearer token scheme every route's `security` names.
pub(crate) struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The wallet routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/wallet/{user_id}",
            post(handlers::create).get(handlers::wallet),
        )
        .route("/wallet/{user_id}/balance", get(handlers::balance))
        .route("/wallet/{user_id}/deduct", post(handlers::deduct))
        .route("/wallet/{user_id}/credit", post(handlers::credit))
        .route("/wallet/{user_id}/adjust", post(handlers::adjust))
        .route("/wallet/{user_id}/history", get(handlers::history))
        .route("/openapi.json", crate::http::openapi_json::<ApiDoc, _>())
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is the API's published contract: it must match the
    /// code. Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p walletctl-daemon`.
    #[test]
    fn the_committed_openapi_document_matches_the_code() {
        let doc = crate::http::openapi_snapshot(
            <super::ApiDoc as utoipa::OpenApi>::openapi(),
            "openapi.json",
        );
        for route in [
            "/wallet/{user_id}/deduct",
            "/wallet/{user_id}/balance",
            "/wallet/{user_id}/history",
        ] {
            assert!(
                doc.contains(&format!("\"{route}\"")),
                "{route} is documented"
            );
        }
    }
}
