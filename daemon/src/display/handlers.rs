//! The display routes' handlers: each parses its request, calls the
//! display service (`walletctl_core::display::DisplayService`) and answers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use walletctl_core::ads::assets::Asset;
use walletctl_core::display::{AdAnswer, AdRequest, RecordError, TokenError, parse_label};
use walletctl_core::domain::UserId;

use super::page;
use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::state::AppState;

/// A transparent 1×1 GIF: the impression pixel.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// An ad request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AdQuery {
    /// The publisher's slot: 1-64 characters of `A-Z a-z 0-9 _ - . :`.
    #[param(pattern = r"^[A-Za-z0-9_.:\-]{1,64}$")]
    slot: String,
    /// The viewer, for the frequency cap: 1-64 characters of `A-Z a-z 0-9 _ - . :`.
    #[param(pattern = r"^[A-Za-z0-9_.:\-]{1,64}$")]
    viewer: Option<String>,
    /// Only this advertiser's campaigns: 1-64 characters of `A-Z a-z 0-9 _ - .`.
    #[param(pattern = r"^[A-Za-z0-9_.\-]{1,64}$")]
    advertiser: Option<String>,
}

fn parse(q: AdQuery) -> Result<AdRequest, ApiError> {
    Ok(AdRequest {
        slot: parse_label("slot", &q.slot).map_err(ApiError::invalid)?,
        viewer: q
            .viewer
            .as_deref()
            .map(|v| parse_label("viewer", v))
            .transpose()
            .map_err(ApiError::invalid)?,
        advertiser: q
            .advertiser
            .as_deref()
            .map(UserId::parse)
            .transpose()
            .map_err(ApiError::invalid)?,
    })
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(get, path = "/ads", tag = "display",
    description = "Picks one active campaign whose advertiser can pay, weighted by price, within its schedule and the viewer's frequency cap. Only the named advertiser's campaigns when `advertiser` is given. No token needed.",
    params(AdQuery),
    responses((status = 200, description = "The ad", body = AdAnswer),
        (status = 204, description = "No campaign can be served"),
        (status = 400, description = "A bad query", body = crate::http::error::ErrorBody)))]
pub(super) async fn decide(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AdQuery>,
) -> Result<Response, ApiError> {
    let req = parse(q)?;
    let answer = state.display.decide(&req).await;
    Ok(no_store(match answer {
        Some(ad) => Json(ad).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }))
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Malformed => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", e.to_string())
        }
        TokenError::Forged => ApiError::new(StatusCode::FORBIDDEN, "forged_token", e.to_string()),
        TokenError::Expired => ApiError::new(StatusCode::GONE, "token_expired", e.to_string()),
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Token(t) => token_error(t),
            RecordError::EventsUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "events_unavailable",
                "the event log did not take the event; retry",
            )
            .with_retry_after(1),
        }
    }
}

#[utoipa::path(get, path = "/i/{token}", tag = "display",
    description = "Records an impression (once per decision, however often it is fetched). A 1×1 GIF when the client accepts images, else 204.",
    params(("token" = String, Path, description = "The signed token from impression_url", pattern = r"^[A-Za-z0-9_\-]{1,16}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")),
    responses((status = 204, description = "Recorded"), (status = 200, description = "Recorded (a 1×1 GIF)"),
        (status = 400, description = "invalid_token", body = crate::http::error::ErrorBody),
        (status = 403, description = "forged_token", body = crate::http::error::ErrorBody),
        (status = 410, description = "token_expired", body = crate::http::error::ErrorBody)))]
pub(super) async fn impression(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.display.impression(&token).await?;
    let wants_image = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("image/"));
    Ok(no_store(if wants_image {
        ([(header::CONTENT_TYPE, "image/gif")], PIXEL).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }))
}

#[utoipa::path(get, path = "/c/{token}", tag = "display",
    description = "Records a click (once per decision) and redirects to the landing page. If the event log is down the viewer is still redirected; the click is then not billed.",
    params(("token" = String, Path, description = "The signed token from click_url", pattern = r"^[A-Za-z0-9_\-]{1,16}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")),
    responses((status = 302, description = "To the landing page"),
        (status = 400, description = "invalid_token", body = crate::http::error::ErrorBody),
        (status = 403, description = "forged_token", body = crate::http::error::ErrorBody),
        (status = 410, description = "token_expired", body = crate::http::error::ErrorBody)))]
pub(super) async fn click(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let landing = state.display.click(&token).await?;
    let location =
        HeaderValue::from_str(&landing).map_err(|_| token_error(TokenError::Malformed))?;
    Ok(no_store(
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
    ))
}

/// The headers of the HTML the display service writes.
fn html(body: String) -> Response {
    no_store(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; frame-src 'self'",
                ),
            ],
            body,
        )
            .into_response(),
    )
}

#[utoipa::path(get, path = "/embed", tag = "display",
    description = "An HTML frame with one ad for a publisher's <iframe>: the creative linked to the click URL, and the impression pixel. Empty when nothing can be served.",
    params(AdQuery),
    responses((status = 200, description = "The frame", content_type = "text/html"),
        (status = 400, description = "A bad query", body = crate::http::error::ErrorBody)))]
pub(super) async fn embed(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AdQuery>,
) -> Result<Response, ApiError> {
    let req = parse(q)?;
    let ad = state.display.decide(&req).await;
    Ok(html(page::frame(ad.as_ref())))
}

#[utoipa::path(get, path = "/demo", tag = "display",
    description = "A demo publisher page with one ad slot framed from /embed (the same query).",
    params(AdQuery),
    responses((status = 200, description = "The page", content_type = "text/html"),
        (status = 400, description = "A bad query", body = crate::http::error::ErrorBody)))]
pub(super) async fn demo(ApiQuery(q): ApiQuery<AdQuery>) -> Result<Response, ApiError> {
    let req = parse(q)?;
    let mut src = format!("/embed?slot={}", req.slot);
    if let Some(v) = &req.viewer {
        src.push_str(&format!("&viewer={v}"));
    }
    if let Some(a) = &req.advertiser {
        src.push_str(&format!("&advertiser={a}"));
    }
    Ok(html(page::demo(&src)))
}

#[utoipa::path(get, path = "/assets/{asset_id}", tag = "display",
    description = "An uploaded asset, the origin a CDN fronts: immutable, named by the SHA-256 of its bytes, with an ETag; If-None-Match answers 304.",
    params(("asset_id" = String, Path, description = "64 lowercase hex digits", pattern = r"^[0-9a-f]{64}$")),
    responses((status = 200, description = "The image"), (status = 304, description = "Not modified"),
        (status = 404, description = "asset_not_found", body = crate::http::error::ErrorBody)))]
pub(super) async fn asset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "asset_not_found",
            "no asset with this name",
        )
    };
    if !Asset::valid_id(&name) {
        return Err(not_found());
    }
    let etag = format!("\"{name}\"");
    let cached = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(ApiError::internal)?,
        ),
    ];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    let asset = state
        .display
        .asset(&name)
        .await
        .map_err(walletctl_core::ads::AdsError::Store)?
        .ok_or_else(not_found)?;
    metrics::counter!("display_asset_requests_total", "result" => if matches { "not_modified" } else { "served" }).increment(1);
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cached).into_response());
    }
    let content_type = HeaderValue::from_str(&asset.content_type).map_err(ApiError::internal)?;
    Ok((
        cached,
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes.clone(),
    )
        .into_response())
}
