//! Bearer tokens with scopes. Only a SHA-256 of each token is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Scopes;
use super::grant::{Accounts, Grant, is_reserved, parse_token_name};
use crate::domain::now_ms;
use crate::platform::audit::audit_record;
use crate::platform::sql::{Db, StoreError, in_tx};

/// A token as the service sees it after checking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's name: the actor recorded in the ledger and audit trail,
    /// and the namespace of its idempotency keys.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// Which accounts it reaches.
    pub accounts: Accounts,
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
    /// The accounts it is bound to.
    pub accounts: Accounts,
}

/// A token as `walletctl token list` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenListing {
    /// Its name.
    pub name: String,
    /// Its scopes, comma-separated.
    pub scopes: String,
    /// The accounts it is bound to, comma-separated; empty when unbound.
    pub accounts: String,
    /// When it was created, ms since the epoch.
    pub created_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
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

    /// Creates an API caller's token. Names are unique, and none of
    /// walletctl's own callers' names may be taken (see
    /// [`super::is_reserved`]). The creation is audited as `actor`'s, with
    /// the scopes and accounts.
    pub async fn create_token(
        &self,
        name: &str,
        grant: impl Into<Grant>,
        actor: &str,
    ) -> Result<NewToken, StoreError> {
        let name = parse_token_name(name).map_err(StoreError::Invalid)?;
        self.insert(&name, &grant.into(), actor).await
    }

    /// Creates the token of one of walletctl's own callers (`operator`, the
    /// ads and display services' tokens): a reserved name, unbound.
    pub async fn create_service_token(
        &self,
        name: &str,
        scopes: &Scopes,
        actor: &str,
    ) -> Result<NewToken, StoreError> {
        if !is_reserved(name) {
            return Err(StoreError::Failed(format!(
                "{name:?} is not a name reserved for walletctl's own callers"
            )));
        }
        self.insert(name, &Grant::unbound(scopes.clone()), actor)
            .await
    }

    async fn insert(&self, name: &str, grant: &Grant, actor: &str) -> Result<NewToken, StoreError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("wct_{}", hex::encode(bytes));
        let (scopes, accounts) = (grant.scopes(), grant.accounts());
        let details = serde_json::json!({
            "scopes": scopes.to_string(),
            "accounts": accounts.to_string(),
        });
        in_tx!(self.db, admin, |tx| {
            let res = sqlx::query("INSERT INTO api_tokens (id, name, token_hash, scopes, accounts, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                .persistent(false)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(name)
                .bind(digest(&secret))
                .bind(scopes.to_string())
                .bind(accounts.to_string())
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
            accounts: accounts.clone(),
        })
    }

    /// Every token, by name, with its scopes and accounts (never a secret).
    pub async fn list_tokens(&self) -> Result<Vec<TokenListing>, StoreError> {
        const SQL: &str = "SELECT name, scopes, accounts, created_at_ms, revoked_at_ms FROM api_tokens ORDER BY name";
        let rows = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (String, String, String, i64, Option<i64>)>(SQL)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(name, scopes, accounts, created_at_ms, revoked_at_ms)| TokenListing {
                    name,
                    scopes,
                    accounts,
                    created_at_ms,
                    revoked_at_ms,
                },
            )
            .collect())
    }

    /// Looks a bearer secret up; `None` if unknown or revoked.
    pub async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        const SQL: &str = "SELECT name, scopes, accounts FROM api_tokens WHERE token_hash = $1 AND revoked_at_ms IS NULL";
        let row = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (String, String, String)>(SQL)
                .persistent(false)
                .bind(digest(secret))
                .fetch_optional(&mut *tx)
                .await?
        });
        let Some((name, scopes, accounts)) = row else {
            return Ok(None);
        };
        let stored = |e| StoreError::Database(sqlx::Error::Decode(Box::new(e)));
        Ok(Some(TokenInfo {
            name,
            scopes: Scopes::parse(&scopes).map_err(stored)?,
            accounts: Accounts::parse(&accounts).map_err(stored)?,
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
