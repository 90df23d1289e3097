use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use walletctl_core::ads::assets::Asset;
use walletctl_core::ads::model::{Budget, Creative, Pricing, Schedule};
use walletctl_core::ads::{Campaign, CampaignInput, Changes, Created, NewCampaign, Update};
use walletctl_core::billing::{CampaignBilling, EventRecord};
use walletctl_core::domain::{CampaignId, strict};
use walletctl_core::platform::auth::Scope;

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, ApiQuery, UserPath};
use crate::state::AppState;

/// The `{campaign_id}` path segment, parsed.
pub(super) struct CampaignPath(CampaignId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CampaignPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        crate::http::extract::parsed_path(parts, state, CampaignId::parse)
            .await
            .map(CampaignPath)
    }
}

/// Which campaigns to list.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Which {
    /// Only the active ones (served).
    #[default]
    Active,
    /// Every campaign, whatever its status.
    All,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// `active` (default) or `all`.
    #[serde(default)]
    status: Which,
}

/// An advertiser's campaigns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CampaignList {
    campaigns: Vec<Campaign>,
}

/// What to do to a campaign: `{"action":"pause"}`, `{"action":"resume"}`,
/// or the fields to change (absent fields stay).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateBody {
    /// `pause` or `resume`; alone.
    action: Option<Action>,
    name: Option<String>,
    #[serde(default, deserialize_with = "strict::optional_object")]
    pricing: Option<Pricing>,
    #[serde(default, deserialize_with = "strict::optional_object")]
    budget: Option<Budget>,
    #[serde(default, deserialize_with = "strict::optional_object")]
    creative: Option<Creative>,
    #[schema(value_type = Option<Object>)]
    targeting: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// A new schedule, or `null` to remove it.
    #[serde(default, deserialize_with = "strict::present_optional_object")]
    #[schema(value_type = Option<Schedule>)]
    schedule: Option<Option<Schedule>>,
}

/// A person's action on a campaign.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Action {
    /// Stop serving it; only a person resumes it.
    Pause,
    /// Serve it again, if its advertiser's wallet can pay.
    Resume,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
}

impl UpdateBody {
    fn into_update(self) -> Result<Update, ApiError> {
        let changes = Changes {
            name: self.name,
            pricing: self.pricing,
            budget: self.budget,
            creative: self.creative,
            targeting: self.targeting,
            metadata: self.metadata,
            schedule: self.schedule,
        };
        let any_field = changes != Changes::default();
        match (self.action, any_field) {
            (Some(_), true) => Err(invalid(
                "send either an action or fields to change, not both",
            )),
            (Some(Action::Pause), false) => Ok(Update::Pause),
            (Some(Action::Resume), false) => Ok(Update::Resume),
            (None, true) => Ok(Update::Change(Box::new(changes))),
            (None, false) => Err(invalid(
                "send an action (pause, resume) or fields to change",
            )),
        }
    }
}

#[utoipa::path(post, path = "/campaigns", tag = "campaigns", security(("bearer" = [])),
    description = "Create a campaign. Idempotent by campaign_id: the same definition again answers 200 with the stored campaign. Scope: campaigns_write. A token bound to accounts creates campaigns only for its own (another user_id answers 404 wallet_not_found).",
    request_body = CampaignInput,
    responses((status = 201, description = "Created", body = Campaign),
        (status = 200, description = "Created before with the same definition", body = Campaign),
        (status = 409, description = "campaign_exists: the id is taken by another definition", body = ErrorBody),
        Errors))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CampaignInput>,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsWrite)?;
    let new = NewCampaign::parse(input).map_err(|e| {
        let field = e.field;
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
        .with_details(serde_json::json!({ "field": field }))
    })?;
    // A bound token creates campaigns only for its own accounts.
    caller.reach(new.user().as_str(), ApiError::wallet_not_found)?;
    // And never learns, through an id clash, of another advertiser's campaign.
    if let Ok(existing) = state.ads.get(new.id()).await
        && !caller.reaches(&existing.user_id)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "campaign_exists",
            "a campaign with this id already exists; choose another id",
        ));
    }
    Ok(match state.ads.create(new).await? {
        Created::New(c) => (StatusCode::CREATED, Json(c)).into_response(),
        Created::Existing(c) => {
            let mut res = Json(c).into_response();
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            res
        }
    })
}

#[utoipa::path(get, path = "/campaigns/{user_id}", tag = "campaigns", security(("bearer" = [])),
    description = "An advertiser's campaigns: the active ones, or all with ?status=all. Scope: campaigns_read. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
    params(("user_id" = String, Path, description = "The advertiser: 1-64 characters of A-Z a-z 0-9 _ - .", pattern = r"^[A-Za-z0-9_.\-]{1,64}$"), ListQuery),
    responses((status = 200, description = "The campaigns, by id", body = CampaignList), Errors))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    UserPath(user): UserPath,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsRead)?;
    caller.reach(user.as_str(), ApiError::wallet_not_found)?;
    let campaigns = state
        .ads
        .list(&user, matches!(q.status, Which::All))
        .await?;
    Ok(Json(CampaignList { campaigns }).into_response())
}

#[utoipa::path(get, path = "/campaigns", tag = "campaigns", security(("bearer" = [])),
    description = "Every campaign ad display may serve: active, and payable as far as the cache knows the advertiser's balance. Ad display reads its candidates here. Scope: campaigns_read; not for a token bound to accounts (404).",
    responses((status = 200, description = "The serving pool", body = CampaignList), Errors))]
pub(super) async fn pool(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsRead)?;
    // The pool spans every advertiser: not for an advertiser's token.
    if caller.is_bound() {
        return Err(ApiError::route_not_found());
    }
    let campaigns = state.ads.serving_pool().await?;
    Ok(Json(CampaignList { campaigns }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct BillingQuery {
    /// How many events to list, oldest first: 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A campaign's billing: its totals and its recorded ad events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct BillingView {
    /// The totals; `null` before its first event.
    totals: Option<CampaignBilling>,
    /// Its ad events as billed or refused, oldest first.
    events: Vec<EventRecord>,
}

#[utoipa::path(get, path = "/campaign/{campaign_id}/billing", tag = "campaigns", security(("bearer" = [])),
    description = "A campaign's billing: impressions and clicks billed, what they cost, and each ad event with its outcome (billed, or unbilled with the reason). Scope: campaigns_read. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
    params(("campaign_id" = String, Path, description = "1-64 characters of A-Z a-z 0-9 _ - .", pattern = r"^[A-Za-z0-9_.\-]{1,64}$"), BillingQuery),
    responses((status = 200, description = "Totals and events", body = BillingView), Errors))]
pub(super) async fn billing(
    State(state): State<AppState>,
    caller: Caller,
    CampaignPath(id): CampaignPath,
    ApiQuery(q): ApiQuery<BillingQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsRead)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "limit must be within 1 ..= 1000",
        )
        .with_details(serde_json::json!({ "field": "limit" })));
    }
    owned(&state, &caller, &id).await?;
    let store = &state.backends.billing;
    // Events first: the totals, read after, count at least every event listed.
    let events = store.ad_events(id.as_str(), i64::from(limit)).await?;
    let totals = store.campaign_billing(id.as_str()).await?;
    Ok(Json(BillingView { totals, events }).into_response())
}

/// An uploaded asset, now the campaign's image.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Uploaded {
    /// The SHA-256 of the bytes: the asset's name.
    asset_id: String,
    /// Its media type.
    content_type: String,
    /// Its size in bytes.
    size: usize,
    /// The campaign after the change.
    campaign: Campaign,
}

#[utoipa::path(post, path = "/campaigns/{campaign_id}/asset", tag = "campaigns", security(("bearer" = [])),
    description = "Uploads an image (PNG, JPEG, GIF or WebP, at most 1 MiB; the body is the image, the Content-Type its type) and makes it the campaign's creative image. It is named by the SHA-256 of its bytes and served by the display service at /assets/{asset_id}, cacheable forever. Uploading the same image again changes nothing. Scope: campaigns_write. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
    params(("campaign_id" = String, Path, description = "1-64 characters of A-Z a-z 0-9 _ - .", pattern = r"^[A-Za-z0-9_.\-]{1,64}$")),
    request_body(content = Vec<u8>, content_type = "image/png", description = "The image's bytes"),
    responses((status = 200, description = "Stored", body = Uploaded),
        (status = 409, description = "campaign_ended", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB", body = ErrorBody),
        Errors))]
pub(super) async fn upload_asset(
    State(state): State<AppState>,
    caller: Caller,
    CampaignPath(id): CampaignPath,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsWrite)?;
    owned(&state, &caller, &id).await?;
    let declared = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let asset = Asset::parse(declared, body.to_vec()).map_err(ApiError::invalid)?;
    let campaign = state.ads.upload_asset(&id, &asset).await?;
    Ok(Json(Uploaded {
        asset_id: asset.id,
        content_type: asset.content_type,
        size: asset.bytes.len(),
        campaign,
    })
    .into_response())
}

#[utoipa::path(get, path = "/campaign/{campaign_id}", tag = "campaigns", security(("bearer" = [])),
    description = "One campaign, whatever its status. Scope: campaigns_read. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
    params(("campaign_id" = String, Path, description = "1-64 characters of A-Z a-z 0-9 _ - .", pattern = r"^[A-Za-z0-9_.\-]{1,64}$")),
    responses((status = 200, description = "The campaign", body = Campaign), Errors))]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    CampaignPath(id): CampaignPath,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsRead)?;
    Ok(Json(owned(&state, &caller, &id).await?).into_response())
}

#[utoipa::path(post, path = "/campaigns/{campaign_id}/update", tag = "campaigns", security(("bearer" = [])),
    description = "Pause, resume (only if the advertiser's wallet can pay the campaign's smallest charge), or change fields. Scope: campaigns_write. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
    params(("campaign_id" = String, Path, description = "1-64 characters of A-Z a-z 0-9 _ - .", pattern = r"^[A-Za-z0-9_.\-]{1,64}$")),
    request_body = UpdateBody,
    responses((status = 200, description = "The campaign after the change", body = Campaign),
        (status = 409, description = "wallet_cannot_pay, budget_exhausted or campaign_ended", body = ErrorBody),
        Errors))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    CampaignPath(id): CampaignPath,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::CampaignsWrite)?;
    // A campaign's advertiser never changes, so checking first is enough.
    owned(&state, &caller, &id).await?;
    let update = body.into_update()?;
    Ok(Json(state.ads.update(&id, update).await?).into_response())
}

/// Campaign `id`, if the caller reaches its advertiser; another
/// advertiser's campaign answers 404 exactly as a missing one does.
async fn owned(state: &AppState, caller: &Caller, id: &CampaignId) -> Result<Campaign, ApiError> {
    let c = state.ads.get(id).await?;
    caller.reach(&c.user_id, ApiError::campaign_not_found)?;
    Ok(c)
}

/// The answers every campaign route may give besides its own (OpenAPI only).
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "describes responses for the OpenAPI document; never built"
)]
pub(super) enum Errors {
    /// Malformed request.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the scope.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such campaign.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The body is over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// A field is invalid.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The campaign store or the wallet service is unavailable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
