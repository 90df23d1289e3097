//! The ad display service: ad decisions (`GET /ads`), the impression and
//! click URLs they hand out, an embeddable frame and a demo publisher page,
//! and the origin of uploaded assets. Stateless: any instance holding the
//! signing keys verifies a token another signed, and candidates come from
//! the advertising management service.

mod candidates;
mod handlers;
mod page;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use walletctl_core::ads::assets::Asset;
use walletctl_core::display::Signer;
use walletctl_core::display::frequency::FrequencyCap;

pub use candidates::Candidates;

use crate::state::AppState;

/// What the display service needs beyond the backends. Cheap to clone.
#[derive(Clone)]
pub struct Display {
    /// Signs and verifies impression and click tokens.
    pub signer: Signer,
    /// The base of impression and click URLs.
    pub public_url: Arc<str>,
    /// The base of asset URLs (a CDN, or the display service itself).
    pub cdn_base: Arc<str>,
    /// How long a token stays valid.
    pub token_ttl_secs: i64,
    /// What may be served.
    pub candidates: Candidates,
    /// The per-viewer cap, if configured.
    pub cap: Option<FrequencyCap>,
    /// Assets served recently (they never change), up to 64 MiB.
    pub assets: moka::future::Cache<String, Arc<Asset>>,
}

/// The in-process asset cache of the display service.
pub fn asset_cache() -> moka::future::Cache<String, Arc<Asset>> {
    moka::future::Cache::builder()
        .weigher(|_, a: &Arc<Asset>| u32::try_from(a.bytes.len()).unwrap_or(u32::MAX))
        .max_capacity(64 * 1024 * 1024)
        .build()
}

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
        .route(
            "/openapi.json",
            get(|| async { axum::Json(<ApiDoc as utoipa::OpenApi>::openapi()) }),
        )
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
