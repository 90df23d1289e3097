//! The one error type at the HTTP edge, and its one JSON shape:
//!
//! ```json
//! {"error": {"code": "insufficient_funds", "message": "…", "details": {…}}}
//! ```
//!
//! `code` is stable and meant for programs; `message` is for people. A 4xx
//! says what was wrong with the request and nothing changed. A 5xx carries no
//! internal detail: its cause is logged once, here, with the request's span.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use walletctl_core::ads::AdsError;
use walletctl_core::ads::store::CampaignStoreError;
use walletctl_core::domain::ParseError;
use walletctl_core::platform::sql::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Structured facts, e.g. the balance an insufficient-funds refusal saw.
    pub details: Option<Value>,
    /// Whether this is a stored answer to an earlier request with the same key.
    pub replayed: bool,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u16>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            replayed: false,
            retry_after: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 `wallet_not_found`: no wallet for this user, or none this caller reaches.
    pub fn wallet_not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "wallet_not_found",
            "no wallet for this user",
        )
    }

    /// 404 `campaign_not_found`: no campaign with this id, or none this caller reaches.
    pub fn campaign_not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "campaign_not_found",
            "no campaign with this id",
        )
    }

    /// 404 `not_found`: a route (or an account) this caller does not reach.
    pub fn route_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 400 for a value that failed its domain type.
    pub fn invalid(e: ParseError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
            .with_details(serde_json::json!({ "field": e.field }))
    }

    /// 401.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid bearer token: Authorization: Bearer <token>",
        )
    }

    /// 503 `outcome_unknown`: the server cannot tell whether the request took
    /// effect. Retrying with the same `Idempotency-Key` is safe and tells.
    pub fn outcome_unknown(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "outcome unknown");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            "the outcome of this request is unknown; retry with the same Idempotency-Key",
        )
        .with_retry_after(1)
    }

    /// Adds a `Retry-After` header, in seconds.
    pub fn with_retry_after(mut self, seconds: u16) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 500; the cause is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

/// The error body every 4xx and 5xx carries.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: e.g. `insufficient_funds`, `idempotency_key_reused`.
    #[schema(example = "insufficient_funds")]
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// Structured facts, when there are any (e.g. the balance a refusal saw).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.replayed {
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound("wallet") => ApiError::wallet_not_found(),
            StoreError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no {what} for this key"),
            ),
            StoreError::Exists(what) => ApiError::new(
                StatusCode::CONFLICT,
                match what {
                    "wallet" => "wallet_exists",
                    "token" => "token_exists",
                    _ => "exists",
                },
                match what {
                    "wallet" => "a wallet for this user already exists".to_owned(),
                    "token" => "a token with this name already exists".to_owned(),
                    _ => format!("a {what} with this key already exists"),
                },
            ),
            StoreError::Invalid(e) => ApiError::invalid(e),
            StoreError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request; use a new key",
            ),
            StoreError::Unknown { what, name } => ApiError::new(
                StatusCode::BAD_REQUEST,
                match what {
                    "replica" => "unknown_replica",
                    _ => "unknown_name",
                },
                format!("unknown {what} {name:?}"),
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; nothing changed; retry with the same Idempotency-Key",
                )
                .with_retry_after(1)
            }
            StoreError::OutcomeUnknown(cause) => ApiError::outcome_unknown(cause),
            StoreError::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests are waiting for this wallet; nothing changed; retry later with the same Idempotency-Key",
            )
            .with_retry_after(1),
            other => ApiError::internal(other),
        }
    }
}

impl From<AdsError> for ApiError {
    fn from(e: AdsError) -> Self {
        match e {
            AdsError::NotFound => ApiError::campaign_not_found(),
            AdsError::Exists(existing) => ApiError::new(
                StatusCode::CONFLICT,
                "campaign_exists",
                "a campaign with this id exists with another definition; nothing changed",
            )
            .with_details(serde_json::json!({ "campaign_id": existing.campaign_id, "version": existing.version })),
            AdsError::Invalid(e) => {
                let field = e.field;
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e.to_string())
                    .with_details(serde_json::json!({ "field": field }))
            }
            AdsError::Ended => ApiError::new(StatusCode::CONFLICT, "campaign_ended", "the campaign has ended; nothing changed"),
            AdsError::WalletCannotPay { balance, needed } => ApiError::new(
                StatusCode::CONFLICT,
                "wallet_cannot_pay",
                format!("the advertiser's wallet cannot pay this campaign's smallest charge of {needed}; top it up first; nothing changed"),
            )
            .with_details(serde_json::json!({ "needed": needed, "balance": balance })),
            AdsError::BudgetExhausted => ApiError::new(
                StatusCode::CONFLICT,
                "budget_exhausted",
                "the campaign's lifetime budget left cannot pay its next charge; raise it first; nothing changed",
            ),
            AdsError::Wallet(cause) => {
                tracing::warn!(error = %cause, "wallet service unavailable to ads");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "wallet_unavailable",
                    "the wallet service could not confirm the funds; nothing changed; retry",
                )
                .with_retry_after(1)
            }
            AdsError::Store(CampaignStoreError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "campaign store unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the campaign store is unavailable; retry")
                    .with_retry_after(1)
            }
            AdsError::Events(cause) => {
                tracing::warn!(error = %cause, "campaign event not published");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "event_log_unavailable",
                    "the change is saved but its event could not be published; retry the same request to publish it",
                )
                .with_retry_after(1)
            }
            AdsError::Contended => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "contended",
                "the campaign kept changing under this request; nothing changed; retry",
            )
            .with_retry_after(1),
            other => ApiError::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
            }
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.body_text(),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is too large",
            ),
            other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

/// The answer to a route that does not exist.
pub async fn not_found() -> ApiError {
    ApiError::route_not_found()
}

/// Gives axum's own `405 Method Not Allowed` (which lists the route's methods
/// in `Allow`) the API's error body, keeping its headers.
pub fn method_not_allowed(res: Response) -> Response {
    if res.status() != StatusCode::METHOD_NOT_ALLOWED
        || res.headers().contains_key(header::CONTENT_TYPE)
    {
        return res;
    }
    let (parts, _) = res.into_parts();
    let mut answer = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see the Allow header",
    )
    .into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}
