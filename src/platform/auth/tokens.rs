//! Bearer tokens with scopes. Only a SHA-256 of each token is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Scopes;
use crate::domain::now_ms;
use crate::platform::audit::audit_record;
use crate::platform::sql::{Db, StoreError, in_tx};

/// A token as the service sees it after checking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's name: the actor recorded in the ledger and audit trail.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
}

/// A token just created; the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its name.
    pub name: String,
    /// The bearer secret.
    pub secret: String,
    /// Its scopes.
    pub scopes: Scopes,
}

/// A secret's SHA-256: what is kept of it (in the database, hex; in
/// caches, these bytes).
pub fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The stored form of a secret: its SHA-256, hex.
pub fn digest(secret: &str) -> String {
    hex::encode(secret_digest(secret))
}

/// The API tokens' store. Cheap to clone.
#[derive(Clone)]
pub struct TokenStore {
    db: Db,
}

impl TokenStore {
    /// The token store over `db`.
    pub fn new(db: Db) -> TokenStore {
        TokenStore { db }
    }

    /// Creates a token. Names are unique. The creation is audited as `actor`'s.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &Scopes,
        actor: &str,
    ) -> Result<NewToken, StoreError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("wct_{}", hex::encode(bytes));
        let details = serde_json::json!({ "scopes": scopes.to_string() });
        in_tx!(self.db, admin, |tx| {
            let res = sqlx::query("INSERT INTO api_tokens (id, name, token_hash, scopes, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
                .persistent(false)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(name)
                .bind(digest(&secret))
                .bind(scopes.to_string())
                .bind(now_ms())
                .execute(&mut *tx)
                .await;
            match res {
                Err(e) if StoreError::is_unique_violation(&e) => {
                    return Err(StoreError::Exists("token"));
                }
                other => other?,
            };
            audit_record!(tx, actor, "token.create", name, &details, now_ms());
        });
        Ok(NewToken {
            name: name.to_owned(),
            secret,
            scopes: scopes.clone(),
        })
    }

    /// Looks a bearer secret up; `None` if unknown or revoked.
    pub async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        const SQL: &str =
            "SELECT name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at_ms IS NULL";
        let row = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (String, String)>(SQL)
                .persistent(false)
                .bind(digest(secret))
                .fetch_optional(&mut *tx)
                .await?
        });
        let Some((name, scopes)) = row else {
            return Ok(None);
        };
        Ok(Some(TokenInfo {
            name,
            scopes: Scopes::parse(&scopes)
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
        }))
    }

    /// Revokes a token by name; false if there was none. Audited as `actor`'s.
    pub async fn revoke_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE name = $2 AND revoked_at_ms IS NULL";
        let details = serde_json::json!({});
        Ok(in_tx!(self.db, admin, |tx| {
            let n = sqlx::query(SQL)
                .persistent(false)
                .bind(now_ms())
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                audit_record!(tx, actor, "token.revoke", name, &details, now_ms());
            }
            n == 1
        }))
    }

    /// Whether any token exists (revoked or not): false only on first run.
    pub async fn any_token(&self) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM api_tokens";
        let n = in_tx!(self.db, primary, |tx| {
            sqlx::query_scalar::<_, i64>(SQL)
                .persistent(false)
                .fetch_one(&mut *tx)
                .await?
        });
        Ok(n > 0)
    }
}
