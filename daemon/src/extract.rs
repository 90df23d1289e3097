//! Extractors whose rejections speak the API's error shape.

use axum::extract::FromRequest;
use axum::http::HeaderMap;
use walletctl_core::domain::{IdempotencyKey, UserId};

use crate::error::ApiError;

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

/// A user id from the path.
pub fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(ApiError::invalid)
}
