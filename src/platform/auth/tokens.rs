//! Bearer tokens with scopes. Only a SHA-256 of each token is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::Scopes;
use crate::now_ms;
use crate::platform::sql::{Store, StoreError};

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

/// The stored form of a secret: its SHA-256, hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
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
        let mut tx = self.admin_tx().await?;
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
            Err(e) if StoreError::is_unique_violation(&e) => return Err(StoreError::TokenExists),
            other => other?,
        };
        let details = serde_json::json!({ "scopes": scopes.to_string() });
        crate::platform::audit::record(&mut tx, actor, "token.create", name, &details, now_ms())
            .await?;
        tx.commit().await?;
        Ok(NewToken {
            name: name.to_owned(),
            secret,
            scopes: scopes.clone(),
        })
    }

    /// Looks a bearer secret up; `None` if unknown or revoked.
    pub async fn verify_token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        let mut tx = self.tx(false).await?;
        let row = sqlx::query(
            "SELECT name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at_ms IS NULL",
        )
        .persistent(false)
        .bind(digest(secret))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let scopes: String = row.try_get(1)?;
        Ok(Some(TokenInfo {
            name: row.try_get(0)?,
            scopes: Scopes::parse(&scopes)
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
        }))
    }

    /// Revokes a token by name; false if there was none. Audited as `actor`'s.
    pub async fn revoke_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        let mut tx = self.admin_tx().await?;
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE name = $2 AND revoked_at_ms IS NULL",
        )
        .persistent(false)
        .bind(now_ms())
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            let details = serde_json::json!({});
            crate::platform::audit::record(
                &mut tx,
                actor,
                "token.revoke",
                name,
                &details,
                now_ms(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Whether any token exists (revoked or not): false only on first run.
    pub async fn any_token(&self) -> Result<bool, StoreError> {
        let mut tx = self.tx(false).await?;
        let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM api_tokens")
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}
