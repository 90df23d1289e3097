//! What a money movement answers: 200 with the entry, or 409 with the
//! refusal (the balance shown only to a caller that may read it), and the
//! answers every route may give, for the OpenAPI document.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use walletctl_core::wallet::{LedgerEntry, Outcome, Refusal};

use crate::http::error::{ApiError, ErrorBody};

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
pub(super) fn money_response(outcome: Outcome, may_read: bool) -> Result<Response, ApiError> {
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
