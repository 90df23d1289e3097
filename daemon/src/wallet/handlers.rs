//! The wallet routes' handlers: each parses its request, calls the wallet
//! service (or the wallet store, for creation and history) and answers.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use walletctl_core::platform::auth::Scope;
use walletctl_core::wallet::{EntryKind, HistoryPage, MoneyCommand, Outcome};

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, ApiQuery, UserPath, idempotency_key};
use crate::state::AppState;

use super::answers::*;
use super::dto::*;

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
    description = "Read a balance. Scope: read. The x-read-source header names the node that answered. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
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
    caller.reach(user.as_str(), ApiError::wallet_not_found)?;
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
    let asked = Move {
        kind: EntryKind::Deduct,
        delta: -body.amount.get(),
        reason: body.reason,
        reference: body.reference,
    };
    move_money(state, &caller, user, &headers, asked).await
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
    let asked = Move {
        kind: EntryKind::Credit,
        delta: body.amount.get(),
        reason: body.reason,
        reference: body.reference,
    };
    move_money(state, &caller, user, &headers, asked).await
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
    let asked = Move {
        kind: EntryKind::Adjust,
        delta: body.amount.get(),
        reason: Some(body.reason),
        reference: body.reference,
    };
    move_money(state, &caller, user, &headers, asked).await
}

/// What a money route asks for, before its key and caller are added.
struct Move {
    kind: EntryKind,
    delta: i64,
    reason: Option<String>,
    reference: Option<String>,
}

async fn move_money(
    State(state): State<AppState>,
    caller: &Caller,
    UserPath(user): UserPath,
    headers: &HeaderMap,
    Move {
        kind,
        delta,
        reason,
        reference,
    }: Move,
) -> Result<Response, ApiError> {
    // Bound tokens hold no money scope (`Grant`); this stands behind that.
    caller.reach(user.as_str(), ApiError::wallet_not_found)?;
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

#[utoipa::path(get, path = "/wallet/{user_id}/history", tag = "wallet", security(("bearer" = [])),
    description = "Ledger entries, newest first. Scope: read. A token bound to accounts reaches only its own; another's answers 404 as if it did not exist.",
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
    caller.reach(user.as_str(), ApiError::wallet_not_found)?;
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
