use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use walletctl_core::domain::{Amount, MAX_AMOUNT, Region, SignedAmount};
use walletctl_core::platform::auth::Scope;
use walletctl_core::platform::sql::ReadConsistency;
use walletctl_core::wallet::{
    EntryKind, HistoryPage, LedgerEntry, MoneyCommand, Outcome, Refusal, Wallet,
};

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, ApiQuery, UserPath, idempotency_key};
use crate::state::AppState;

/// The longest `reason` or `reference` accepted.
const MAX_TEXT: usize = 500;

/// The `{user_id}` path segment, for the OpenAPI document (parsed by `UserPath`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes a parameter for the OpenAPI document; never built"
)]
pub(super) struct UserParam {
    /// The wallet's owner: 1–64 characters of `A-Z a-z 0-9 _ - .`.
    #[param(pattern = r"^[A-Za-z0-9_.\-]{1,64}$", min_length = 1, max_length = 64)]
    user_id: String,
}

/// The `Idempotency-Key` header, for the OpenAPI document (parsed by `idempotency_key`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "describes a parameter for the OpenAPI document; never built"
)]
pub(super) struct KeyHeader {
    /// Unique per logical request and per token; reuse it to retry. 1–128 printable ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[!-~]{1,128}$",
        min_length = 1,
        max_length = 128
    )]
    idempotency_key: String,
}

/// A new wallet.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    /// The shard key: 1–32 characters of `A-Z 0-9 _`.
    #[schema(value_type = String, example = "SOUTH_EAST", pattern = "^[A-Z0-9_]{1,32}$", min_length = 1, max_length = 32)]
    region: Region,
}

/// A deduction or a credit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveBody {
    /// Minor units, `1 ..= 10^15`.
    #[schema(value_type = i64, minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    amount: Amount,
    /// Why, up to 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    reason: Option<String>,
    /// Your reference (e.g. an order id), up to 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    reference: Option<String>,
}

/// An operator adjustment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AdjustBody {
    /// Signed minor units, non-zero, within `±10^15`.
    #[schema(schema_with = non_zero_amount)]
    amount: SignedAmount,
    /// Why: required, not blank, up to 500 characters, no control characters; recorded in the audit trail.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    reason: String,
    /// Your reference, up to 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    reference: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ReadQuery {
    /// `replica` (default: the region's replica) or `strong` (synchronous standby or primary).
    #[serde(default)]
    consistency: ReadConsistency,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    /// Entries per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Entries with ids below this: the previous page's `next_before`.
    before: Option<i64>,
    /// As for balances.
    #[serde(default)]
    consistency: ReadConsistency,
}

/// A wallet as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct WalletBody {
    user_id: String,
    region: String,
    balance: i64,
    version: i64,
    updated_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

impl WalletBody {
    fn new(w: Wallet, source: Option<String>) -> Self {
        WalletBody {
            user_id: w.user_id,
            region: w.region,
            balance: w.balance,
            version: w.version,
            updated_at_ms: w.updated_at_ms,
            source,
        }
    }
}

/// `-10^15 ..= -1` or `1 ..= 10^15`: an adjustment is never zero.
fn non_zero_amount() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    let range = |min: i64, max: i64| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(min))
            .maximum(Some(max))
    };
    OneOfBuilder::new()
        .item(range(-MAX_AMOUNT, -1))
        .item(range(1, MAX_AMOUNT))
        .description(Some("Signed minor units, non-zero, within ±10^15."))
        .build()
        .into()
}

fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{field}: must be at most {MAX_TEXT} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{field}: must not contain control characters"),
        )),
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[utoipa::path(post, path = "/wallet/{user_id}", tag = "wallet", security(("bearer" = [])),
    description = "Create an empty wallet in a region. Scope: credit.",
    params(UserParam), request_body = CreateBody,
    responses((status = 201, description = "Created", body = WalletBody),
        (status = 409, description = "A wallet for this user exists", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        Errors))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    UserPath(user): UserPath,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Credit)?;
    let wallet = state
        .backends
        .wallets
        .create_wallet(&user, &body.region, caller.name())
        .await?;
    Ok((StatusCode::CREATED, Json(WalletBody::new(wallet, None))).into_response())
}

#[utoipa::path(get, path = "/wallet/{user_id}/balance", tag = "wallet", security(("bearer" = [])),
    description = "Read a balance. Scope: read. The x-read-source header names the node that answered.",
    params(UserParam, ReadQuery),
    responses((status = 200, description = "The wallet", body = WalletBody),
        Errors))]
pub(super) async fn balance(
    State(state): State<AppState>,
    caller: Caller,
    UserPath(user): UserPath,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let read = state.wallet.balance(&user, q.consistency).await?;
    let source = HeaderValue::from_str(&read.source).ok();
    let mut res = Json(WalletBody::new(read.wallet, Some(read.source))).into_response();
    if let Some(v) = source {
        res.headers_mut().insert("x-read-source", v);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/wallet/{user_id}", tag = "wallet", security(("bearer" = [])),
    description = "The same as GET /wallet/{user_id}/balance. Scope: read.",
    params(UserParam, ReadQuery),
    responses((status = 200, description = "The wallet", body = WalletBody),
        Errors))]
pub(super) async fn wallet(
    state: State<AppState>,
    caller: Caller,
    user: UserPath,
    query: ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    balance(state, caller, user, query).await
}

#[utoipa::path(post, path = "/wallet/{user_id}/deduct", tag = "wallet", security(("bearer" = [])),
    description = "Deduct atomically; never below zero. Scope: deduct.",
    params(UserParam, KeyHeader), request_body = MoveBody,
    responses(MoneyAnswers, Errors))]
pub(super) async fn deduct(
    state: State<AppState>,
    caller: Caller,
    user: UserPath,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Deduct)?;
    let delta = -body.amount.get();
    move_money(
        state,
        &caller,
        user,
        &headers,
        EntryKind::Deduct,
        delta,
        body.reason,
        body.reference,
    )
    .await
}

#[utoipa::path(post, path = "/wallet/{user_id}/credit", tag = "wallet", security(("bearer" = [])),
    description = "Top up. Scope: credit.",
    params(UserParam, KeyHeader), request_body = MoveBody,
    responses(MoneyAnswers, Errors))]
pub(super) async fn credit(
    state: State<AppState>,
    caller: Caller,
    user: UserPath,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Credit)?;
    let delta = body.amount.get();
    move_money(
        state,
        &caller,
        user,
        &headers,
        EntryKind::Credit,
        delta,
        body.reason,
        body.reference,
    )
    .await
}

#[utoipa::path(post, path = "/wallet/{user_id}/adjust", tag = "wallet", security(("bearer" = [])),
    description = "Operator adjustment, either sign, with a reason; audited. Scope: adjust.",
    params(UserParam, KeyHeader), request_body = AdjustBody,
    responses(MoneyAnswers, Errors))]
pub(super) async fn adjust(
    state: State<AppState>,
    caller: Caller,
    user: UserPath,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AdjustBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Adjust)?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "reason: an adjustment needs a reason",
        ));
    }
    let delta = body.amount.get();
    move_money(
        state,
        &caller,
        user,
        &headers,
        EntryKind::Adjust,
        delta,
        Some(body.reason),
        body.reference,
    )
    .await
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site per route; a struct would only rename the list"
)]
async fn move_money(
    State(state): State<AppState>,
    caller: &Caller,
    UserPath(user): UserPath,
    headers: &HeaderMap,
    kind: EntryKind,
    delta: i64,
    reason: Option<String>,
    reference: Option<String>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(headers)?;
    let cmd = MoneyCommand {
        user,
        kind,
        delta,
        reason: text("reason", reason)?,
        reference: text("reference", reference)?,
        key,
        actor: caller.name().to_owned(),
        fence: None,
    };
    let outcome = state.wallet.apply(cmd).await?;
    record(kind, &outcome);
    money_response(outcome, caller.has(Scope::Read))
}

fn record(kind: EntryKind, outcome: &Outcome) {
    let result = match (&outcome.result, outcome.replayed) {
        (_, true) => "replayed",
        (Ok(_), false) => "applied",
        (Err(_), false) => "refused",
    };
    metrics::counter!("wallet_money_moves_total", "kind" => kind.as_str(), "result" => result)
        .increment(1);
}

/// The answers every wallet route may give besides its own (OpenAPI only).
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
    /// No wallet for this user.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `unavailable` (nothing changed), `outcome_unknown` (it may have happened) or
    /// `overloaded` (too much waits for this wallet): retry with the same Idempotency-Key.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The answers of a money movement (OpenAPI only).
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "describes responses for the OpenAPI document; never built"
)]
pub(super) enum MoneyAnswers {
    /// Applied, or replayed (`replayed: true`, header `idempotent-replayed: true`).
    #[response(status = 200)]
    Applied(MoveResponse),
    /// Refused (`insufficient_funds`, `balance_limit_exceeded`); nothing changed.
    #[response(status = 409)]
    Refused(ErrorBody),
    /// Invalid body, or the key was used with another request (`idempotency_key_reused`).
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The body is over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not sent as `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

/// A money movement's answer: 200 with the entry, or 409 with the refusal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct MoveResponse {
    entry: LedgerEntry,
    balance: i64,
    replayed: bool,
}

/// The answer to a money command. A refusal tells the balance it saw only to
/// a caller that may read balances: a `deduct`-only token learns that it was
/// refused, not how much is there.
fn money_response(outcome: Outcome, may_read: bool) -> Result<Response, ApiError> {
    match outcome.result {
        Ok(entry) => {
            let mut res = Json(MoveResponse {
                balance: entry.balance_after,
                entry,
                replayed: outcome.replayed,
            })
            .into_response();
            if outcome.replayed {
                res.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            Ok(res)
        }
        Err(refusal) => {
            let mut err = match refusal {
                Refusal::InsufficientFunds { balance, requested } => ApiError::new(
                    StatusCode::CONFLICT,
                    "insufficient_funds",
                    format!("the balance {balance} is less than the {requested} asked for; nothing changed"),
                )
                .with_details(json!({ "balance": balance, "requested": requested })),
                Refusal::BalanceLimitExceeded { balance, requested } => ApiError::new(
                    StatusCode::CONFLICT,
                    "balance_limit_exceeded",
                    format!("crediting {requested} would take the balance {balance} above the maximum; nothing changed"),
                )
                .with_details(json!({ "balance": balance, "requested": requested })),
            };
            err.replayed = outcome.replayed;
            if let Some(d) = err.details.as_mut() {
                d["replayed"] = json!(outcome.replayed);
                if !may_read && let Some(d) = d.as_object_mut() {
                    d.remove("balance");
                    err.message = match err.code {
                        "insufficient_funds" => {
                            "the balance is less than the amount asked for; nothing changed".into()
                        }
                        _ => {
                            "this credit would take the balance above the maximum; nothing changed"
                                .into()
                        }
                    };
                }
            }
            Err(err)
        }
    }
}

#[utoipa::path(get, path = "/wallet/{user_id}/history", tag = "wallet", security(("bearer" = [])),
    description = "Ledger entries, newest first. Scope: read.",
    params(UserParam, HistoryQuery),
    responses((status = 200, description = "A page", body = HistoryPage),
        Errors))]
pub(super) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    UserPath(user): UserPath,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let limit = match q.limit.unwrap_or(50) {
        n @ 1..=500 => n as u32,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "limit: must be between 1 and 500",
            ));
        }
    };
    let page = state
        .backends
        .wallets
        .history(&user, q.before, limit, q.consistency)
        .await?;
    Ok(Json(page).into_response())
}
