//! The wallet API's request and response bodies and their parsing (the
//! OpenAPI schemas come from these types).

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use walletctl_core::domain::{Amount, MAX_AMOUNT, Region, SignedAmount};
use walletctl_core::platform::sql::ReadConsistency;
use walletctl_core::wallet::Wallet;

use crate::http::error::ApiError;

/// The longest `reason` or `reference` accepted.
pub(super) const MAX_TEXT: usize = 500;

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
    pub(super) user_id: String,
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
    pub(super) idempotency_key: String,
}

/// A new wallet.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    /// The shard key: 1–32 characters of `A-Z 0-9 _`.
    #[schema(value_type = String, example = "SOUTH_EAST", pattern = "^[A-Z0-9_]{1,32}$", min_length = 1, max_length = 32)]
    pub(super) region: Region,
}

/// A deduction or a credit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveBody {
    /// Minor units, `1 ..= 10^15`.
    #[schema(value_type = i64, minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub(super) amount: Amount,
    /// Why, up to 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(super) reason: Option<String>,
    /// Your reference (e.g. an order id), up to 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(super) reference: Option<String>,
}

/// An operator adjustment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AdjustBody {
    /// Signed minor units, non-zero, within `±10^15`.
    #[schema(schema_with = non_zero_amount)]
    pub(super) amount: SignedAmount,
    /// Why: required, not blank, up to 500 characters, no control characters; recorded in the audit trail.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(super) reason: String,
    /// Your reference, up to 500 characters, no control characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(super) reference: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ReadQuery {
    /// `replica` (default: the region's replica) or `strong` (synchronous standby or primary).
    #[serde(default)]
    pub(super) consistency: ReadConsistency,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    /// Entries per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub(super) limit: Option<i64>,
    /// Entries with ids below this: the previous page's `next_before`.
    pub(super) before: Option<i64>,
    /// As for balances.
    #[serde(default)]
    pub(super) consistency: ReadConsistency,
}

/// A wallet as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct WalletBody {
    pub(super) user_id: String,
    pub(super) region: String,
    pub(super) balance: i64,
    pub(super) version: i64,
    pub(super) updated_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) source: Option<String>,
}

impl WalletBody {
    pub(super) fn new(w: Wallet, source: Option<String>) -> Self {
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
pub(super) fn non_zero_amount() -> utoipa::openapi::schema::Schema {
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

pub(super) fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
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
