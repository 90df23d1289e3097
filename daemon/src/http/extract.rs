//! Extractors whose rejections speak the API's error shape.

use axum::extract::FromRequest;
use axum::http::HeaderMap;
use walletctl_core::domain::{IdempotencyKey, UserId};

use crate::http::error::ApiError;

/// A JSON body, rejecting with [`ApiError`]. The body must be a JSON
/// object: serde's derived structs would also take an array (fields by
/// position), which no documented request is.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        let invalid = |message: String| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                message,
            )
        };
        if !value.is_object() {
            return Err(invalid("the body must be a JSON object".into()));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| invalid(e.to_string()))
    }
}

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
        parsed_path(parts, state, UserId::parse).await.map(UserPath)
    }
}

/// The request's one path segment, parsed with `parse`: a bad one is a 400
/// in the API's shape. What every typed path extractor shares.
pub async fn parsed_path<S: Send + Sync, T>(
    parts: &mut axum::http::request::Parts,
    state: &S,
    parse: fn(&str) -> Result<T, walletctl_core::domain::ParseError>,
) -> Result<T, ApiError> {
    use axum::extract::FromRequestParts;
    let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_request",
                e.body_text(),
            )
        })?;
    parse(&raw).map_err(ApiError::invalid)
}
