//! Bearer tokens with scopes. A checked token is remembered for
//! [`TOKEN_TTL`], so a revocation takes at most that long to bite.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use walletctl_core::domain::Scope;
use walletctl_core::store::TokenInfo;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a checked token is trusted without asking the store again.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);

/// Recently checked tokens.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Option<TokenInfo>, Instant)>>,
}

impl TokenCache {
    fn get(&self, secret: &str) -> Option<Option<TokenInfo>> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(secret)
            .filter(|(_, at)| at.elapsed() < TOKEN_TTL)
            .map(|(info, _)| info.clone())
    }

    fn put(&self, secret: &str, info: Option<TokenInfo>) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
        }
        map.insert(secret.to_owned(), (info, Instant::now()));
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

impl Caller {
    /// 403 unless the caller's token has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token lacks the {:?} scope", scope.as_str()),
            ))
        }
    }

    /// The token's name: the actor in the ledger and the audit trail.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let secret = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let info = match state.tokens.get(secret) {
            Some(info) => info,
            None => {
                let info = state.backends.store.verify_token(secret).await?;
                // Only known tokens are remembered, so a new token works at once.
                if info.is_some() {
                    state.tokens.put(secret, info.clone());
                }
                info
            }
        };
        info.map(Caller).ok_or_else(ApiError::unauthorized)
    }
}
