//! The advertising management service's HTTP API: campaigns created,
//! listed, read, paused, resumed and changed. Paths keep the design's
//! `GET /campaigns/{userId}` and `POST /campaigns/{campaignId}/update`.

mod handlers;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;
use crate::wallet::BearerAuth;

/// The ads service's OpenAPI document, served at `/openapi.json` on its port
/// and kept in `docs/openapi-ads.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "walletctl advertising management", description = "Campaigns: create, list, read, pause, resume, change. See docs/api.md."),
    paths(handlers::create, handlers::pool, handlers::list, handlers::get, handlers::billing, handlers::update, handlers::upload_asset),
    components(schemas(crate::http::error::ErrorBody, crate::http::error::ErrorDetail, handlers::Which)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The campaign routes. `/campaigns/{id}` is an advertiser's user id when
/// read, and `/campaigns/{id}/update` a campaign's id, as the design has it.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/campaigns", post(handlers::create).get(handlers::pool))
        .route("/campaigns/{id}", get(handlers::list))
        .route("/campaigns/{id}/update", post(handlers::update))
        .route(
            "/campaigns/{id}/asset",
            post(handlers::upload_asset).layer(axum::extract::DefaultBodyLimit::max(
                walletctl_core::ads::assets::MAX_ASSET_BYTES,
            )),
        )
        .route("/campaign/{id}", get(handlers::get))
        .route("/campaign/{id}/billing", get(handlers::billing))
        .route("/openapi.json", crate::http::openapi_json::<ApiDoc, _>())
}

#[cfg(test)]
mod tests {
    /// `docs/openapi-ads.json` is the ads API's published contract.
    /// Regenerate with `UPDATE_SNAPSHOTS=1 cargo test -p walletctl-daemon`.
    #[test]
    fn the_committed_ads_openapi_document_matches_the_code() {
        crate::http::openapi_snapshot(
            <super::ApiDoc as utoipa::OpenApi>::openapi(),
            "openapi-ads.json",
        );
    }
}
