//! The ad display service's HTTP side: ad decisions (`GET /ads`), the
//! impression and click URLs they hand out, an embeddable frame and a demo
//! publisher page, and the origin of uploaded assets. The handlers parse,
//! call `walletctl_core::display::DisplayService` and answer. Stateless:
//! any instance holding the signing keys verifies a token another signed,
//! and candidates come from the advertising management service.

mod handlers;
mod page;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// The display service's OpenAPI document, served at `/openapi.json` on its
/// port and kept in `docs/openapi-display.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "walletctl ad display",
        description = "Ad decisions, impression and click URLs, the embeddable frame, and asset origin. No token needed. See docs/api.md."
    ),
    paths(
        handlers::decide,
        handlers::impression,
        handlers::click,
        handlers::embed,
        handlers::demo,
        handlers::asset
    ),
    components(schemas(crate::http::error::ErrorBody, crate::http::error::ErrorDetail))
)]
pub struct ApiDoc;

/// The display routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", crate::http::openapi_json::<ApiDoc, _>())
        .route("/ads", get(handlers::decide))
        .route("/i/{token}", get(handlers::impression))
        .route("/c/{token}", get(handlers::click))
        .route("/embed", get(handlers::embed))
        .route("/demo", get(handlers::demo))
        .route("/assets/{name}", get(handlers::asset))
}

#[cfg(test)]
mod tests {
    /// `docs/openapi-display.json` is the display API's published contract.
    #[test]
    fn the_committed_display_openapi_document_matches_the_code() {
        let doc = crate::http::openapi_snapshot(
            <super::ApiDoc as utoipa::OpenApi>::openapi(),
            "openapi-display.json",
        );
        for route in ["/ads", "/i/{token}", "/c/{token}", "/assets/{asset_id}"] {
            assert!(
                doc.contains(&format!("\"{route}\"")),
                "{route} is documented"
            );
        }
    }
}
