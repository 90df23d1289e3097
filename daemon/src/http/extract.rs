//! Extractors whose rejections speak the API's error shape.

use axum::extract::FromRequest;
use axum::http::HeaderMap;
use walletctl_core::domain::{IdempotencyKey, UserId};

use crate::http::error::ApiError;

/// `axum::Json`, rejecting with [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query`, rejecting with [`ApiError`].
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The `Idempotency-Key` header, required on every money movement.
pub fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let raw = headers.get("idempotency-key").ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "send an Idempotency-Key header: a unique key per logical request, reused on retries",
        )
    })?;
    let raw = raw.to_str().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request",
            "idempotency_key: must be printable ASCII",
        )
    })?;
    IdempotencyKey::parse(raw).map_err(ApiError::invalid)
}

/// The `{user_id}` path segment, parsed: a bad id is a 400 in the API's shape.
#[derive(Debug, Clone)]
pub struct UserPath(pub UserId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for UserPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| {
                    ApiError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "invalid_request",
                        e.body_text(),
                    )
                })?;
        UserId::parse(&raw).map(UserPath).map_err(ApiError::invalid)
    }
}
