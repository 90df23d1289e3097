//! Campaigns in an SQLite file of their own (`campaigns.db` in the data
//! directory), with their own migrations (`migrations/ads-sqlite/`). Each
//! campaign is kept whole as JSON, so free-form fields round-trip exactly;
//! the columns beside it are what queries and the version guard need.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::ads::assets::{Asset, AssetSource};

use super::{CampaignStore, CampaignStoreError, Inserted, MigrateReport};
use crate::ads::model::Campaign;
use crate::domain::{CampaignId, UserId};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/ads-sqlite");

/// The embedded campaign store.
#[derive(Clone)]
pub struct EmbeddedCampaigns {
    pool: SqlitePool,
}

fn err(e: sqlx::Error) -> CampaignStoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            CampaignStoreError::Unavailable(e.to_string())
        }
        other => CampaignStoreError::Other(other.to_string()),
    }
}

fn decode(doc: &str) -> Result<Campaign, CampaignStoreError> {
    serde_json::from_str(doc)
        .map_err(|e| CampaignStoreError::Other(format!("stored campaign unreadable: {e}")))
}

impl EmbeddedCampaigns {
    /// Opens (creating if missing) the file; connects on first use.
    pub fn open(path: &Path) -> Result<EmbeddedCampaigns, CampaignStoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(err)?
            .create_if_missing(true);
        // One connection: SQLite has one writer, and campaigns are few.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options);
        Ok(EmbeddedCampaigns { pool })
    }
}

#[async_trait]
impl CampaignStore for EmbeddedCampaigns {
    async fn migrate(&self) -> Result<MigrateReport, CampaignStoreError> {
        let before: Vec<i64> = applied(&self.pool).await.unwrap_or_default();
        MIGRATIONS
            .run(&self.pool)
            .await
            .map_err(|e| CampaignStoreError::Other(e.to_string()))?;
        let after = applied(&self.pool).await.map_err(err)?;
        Ok(MigrateReport {
            applied: MIGRATIONS
                .iter()
                .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
                .map(|m| format!("campaigns migration {} {}", m.version, m.description))
                .collect(),
            skipped: vec!["sharding: the embedded store is one file".into()],
        })
    }

    async fn insert(&self, c: &Campaign) -> Result<Inserted, CampaignStoreError> {
        let doc = serde_json::to_string(c).map_err(|e| CampaignStoreError::Other(e.to_string()))?;
        let n = sqlx::query(
            "INSERT INTO campaigns (campaign_id, user_id, status, version, doc) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (campaign_id) DO NOTHING",
        )
        .bind(&c.campaign_id)
        .bind(&c.user_id)
        .bind(c.status.as_str())
        .bind(c.version)
        .bind(doc)
        .execute(&self.pool)
        .await
        .map_err(err)?
        .rows_affected();
        if n == 1 {
            return Ok(Inserted::New);
        }
        let id = CampaignId::parse(&c.campaign_id)
            .map_err(|e| CampaignStoreError::Other(e.to_string()))?;
        match self.get(&id).await? {
            Some(existing) => Ok(Inserted::Exists(Box::new(existing))),
            None => Err(CampaignStoreError::Other(
                "a conflicting campaign vanished".into(),
            )),
        }
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, CampaignStoreError> {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc FROM campaigns WHERE campaign_id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(err)?;
        doc.as_deref().map(decode).transpose()
    }

    async fn list(
        &self,
        user: &UserId,
        only_active: bool,
    ) -> Result<Vec<Campaign>, CampaignStoreError> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM campaigns WHERE user_id = $1 AND ($2 = 0 OR status = 'active') ORDER BY campaign_id",
        )
        .bind(user.as_str())
        .bind(i64::from(only_active))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        docs.iter().map(|d| decode(d)).collect()
    }

    async fn replace(
        &self,
        c: &Campaign,
        expected_version: i64,
    ) -> Result<bool, CampaignStoreError> {
        let doc = serde_json::to_string(c).map_err(|e| CampaignStoreError::Other(e.to_string()))?;
        let n = sqlx::query(
            "UPDATE campaigns SET status = $1, version = $2, doc = $3 WHERE campaign_id = $4 AND version = $5",
        )
        .bind(c.status.as_str())
        .bind(c.version)
        .bind(doc)
        .bind(&c.campaign_id)
        .bind(expected_version)
        .execute(&self.pool)
        .await
        .map_err(err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Campaign>, CampaignStoreError> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM campaigns WHERE campaign_id > $1 ORDER BY campaign_id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        docs.iter().map(|d| decode(d)).collect()
    }

    async fn wallet_version(&self, user: &UserId) -> Result<Option<i64>, CampaignStoreError> {
        sqlx::query_scalar("SELECT version FROM wallet_versions WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(err)
    }

    async fn record_wallet_version(
        &self,
        user: &UserId,
        version: i64,
    ) -> Result<(), CampaignStoreError> {
        sqlx::query(
            "INSERT INTO wallet_versions (user_id, version) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET version = excluded.version WHERE excluded.version > wallet_versions.version",
        )
        .bind(user.as_str())
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), CampaignStoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn put_asset(&self, asset: &Asset) -> Result<(), CampaignStoreError> {
        sqlx::query(
            "INSERT INTO assets (id, content_type, bytes, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&asset.id)
        .bind(&asset.content_type)
        .bind(&asset.bytes)
        .bind(crate::domain::now_ms())
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "embedded_campaigns"
    }
}

async fn applied(pool: &SqlitePool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = true ORDER BY version")
        .fetch_all(pool)
        .await
}

#[async_trait]
impl AssetSource for EmbeddedCampaigns {
    async fn get_asset(&self, id: &str) -> Result<Option<Asset>, CampaignStoreError> {
        let row = sqlx::query_as::<_, (String, Vec<u8>)>(
            "SELECT content_type, bytes FROM assets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(err)?;
        Ok(row.map(|(content_type, bytes)| Asset {
            id: id.to_owned(),
            content_type,
            bytes,
        }))
    }
}
