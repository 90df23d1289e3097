//! Bearer tokens with scopes, checked once per request by the [`Caller`]
//! extractor.
//!
//! A token that is malformed by its shape alone (`wct_` and 64 hex digits) is
//! refused without touching the database. Checked tokens, known and unknown,
//! are remembered in a bounded cache for [`TOKEN_TTL`], so a flood of bad
//! tokens never reaches the primary and a revocation takes at most that long
//! to bite.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use walletctl_core::platform::auth::TokenStore;
use walletctl_core::platform::auth::{Scope, TokenInfo};

use super::error::ApiError;

/// How long a checked token (known or unknown) is trusted without asking the store again.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);

/// The most checked tokens remembered at once.
const CACHE_CAPACITY: u64 = 50_000;

/// Checks bearer secrets against the store, through a bounded TTL cache.
#[derive(Clone)]
pub struct Authenticator {
    store: TokenStore,
    /// Keyed by the secret's digest; `None` remembers an unknown or revoked token.
    checked: moka::future::Cache<[u8; 32], Option<TokenInfo>>,
}

impl Authenticator {
    /// An authenticator over the store's token table.
    pub fn new(store: TokenStore) -> Self {
        Authenticator {
            store,
            checked: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(TOKEN_TTL)
                .build(),
        }
    }

    /// The token behind `secret`, if it is valid and not revoked.
    pub async fn check(&self, secret: &str) -> Result<Option<TokenInfo>, ApiError> {
        if !well_formed(secret) {
            metrics::counter!("auth_rejected_total", "reason" => "malformed").increment(1);
            return Ok(None);
        }
        // Keyed by the secret's SHA-256: the cache holds no secrets.
        let digest = walletctl_core::platform::auth::secret_digest(secret);
        // The common case, a token checked moments ago, without setting up
        // a lookup.
        if let Some(known) = self.checked.get(&digest).await {
            return Ok(known);
        }
        // Concurrent checks of one token share a single lookup.
        self.checked
            .try_get_with(digest, self.store.verify_token(secret))
            .await
            .map_err(|e| ApiError::from(e.duplicate()))
    }
}

/// Whether `secret` has the shape of a token walletctl issues: `wct_` and 64 hex digits.
fn well_formed(secret: &str) -> bool {
    secret
        .strip_prefix("wct_")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Any state the [`Caller`] extractor can authenticate against.
pub trait AuthState: Send + Sync {
    /// The authenticator.
    fn authenticator(&self) -> &Authenticator;
}

impl<T: AuthState> AuthState for Arc<T> {
    fn authenticator(&self) -> &Authenticator {
        (**self).authenticator()
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

impl Caller {
    /// 403 unless the caller's token has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token lacks the {:?} scope", scope.as_str()),
            ))
        }
    }

    /// Whether the caller's token has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.0.scopes.contains(scope)
    }

    /// Whether the caller reaches `user`'s wallet and campaigns: always for
    /// an unbound (operator or service) token, only its own accounts for a
    /// bound one.
    pub fn reaches(&self, user: &str) -> bool {
        self.0.accounts.reach(user)
    }

    /// `not_found` unless the caller reaches `user`: another advertiser's
    /// ids answer exactly as ids that do not exist, so none is revealed.
    pub fn reach(&self, user: &str, not_found: fn() -> ApiError) -> Result<(), ApiError> {
        if self.reaches(user) {
            Ok(())
        } else {
            metrics::counter!("auth_account_refusals_total").increment(1);
            Err(not_found())
        }
    }

    /// Whether the token is bound to advertiser accounts.
    pub fn is_bound(&self) -> bool {
        self.0.accounts.is_bound()
    }

    /// The token's name: the actor in the ledger and the audit trail, and the
    /// namespace of its idempotency keys.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl<S: AuthState> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let secret = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        state
            .authenticator()
            .check(secret)
            .await?
            .map(Caller)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The bearer secret of a request, if it sent one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn only_issued_shapes_are_well_formed() {
        assert!(well_formed(&format!("wct_{}", "ab".repeat(32))));
        assert!(!well_formed(&format!("wct_{}", "ab".repeat(31))));
        assert!(!well_formed(&format!("wct_{}", "zz".repeat(32))));
        assert!(!well_formed(&format!("xyz_{}", "ab".repeat(32))));
        assert!(!well_formed(""));
    }
}
