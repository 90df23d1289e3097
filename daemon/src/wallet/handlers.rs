use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use walletctl_core::domain::{Amount, Region, Scope, SignedAmount};
use walletctl_core::store::{
    EntryKind, LedgerEntry, MoneyCommand, Outcome, ReadConsistency, Refusal, Wallet,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, UserPath, idempotency_key};
use crate::state::AppState;

/// The longest `reason` or `reference` accepted.
const MAX_TEXT: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    region: Region,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveBody {
    amount: Amount,
    reason: Option<String>,
    reference: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdjustBody {
    amount: SignedAmount,
    reason: String,
    reference: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ReadQuery {
    #[serde(default)]
    consistency: ReadConsistency,
}

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    limit: Option<u32>,
    before: Option<i64>,
    #[serde(default)]
    consistency: ReadConsistency,
}

/// A wallet as the API shows it.
#[derive(Debug, Serialize)]
struct WalletBody {
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

fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("{field}: must be at most {MAX_TEXT} characters"),
        )),
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    UserPath(user): UserPath,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Credit)?;
    let wallet = state
        .backends
        .store
        .create_wallet(&user, &body.region, caller.name())
        .await?;
    Ok((StatusCode::CREATED, Json(WalletBody::new(wallet, None))).into_response())
}

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
    money_response(outcome)
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

/// A money movement's answer: 200 with the entry, or 409 with the refusal.
#[derive(Debug, Serialize)]
struct MoveResponse {
    entry: LedgerEntry,
    balance: i64,
    replayed: bool,
}

fn money_response(outcome: Outcome) -> Result<Response, ApiError> {
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
            }
            Err(err)
        }
    }
}

pub(super) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    UserPath(user): UserPath,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    caller.require(Scope::Read)?;
    let page = state
        .backends
        .store
        .history(&user, q.before, q.limit.unwrap_or(50), q.consistency)
        .await?;
    Ok(Json(page).into_response())
}
