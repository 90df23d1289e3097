//! Campaigns in MongoDB, the store of record in distributed mode: one
//! document per campaign in `campaigns`, `_id` = `campaign_id`, with a
//! unique index on `campaign_id` and an index on `user_id` + `status`. On a
//! sharded cluster (`mongos`) `migrate` shards the collection by hashed
//! `user_id`; on a single server or replica set it says it skipped that.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use crate::ads::assets::{Asset, AssetSource};

use super::{CampaignStore, CampaignStoreError, Inserted, MigrateReport};
use crate::ads::model::Campaign;
use crate::domain::{CampaignId, UserId};
use crate::platform::mongo::MongoHandle;

const COLLECTION: &str = "campaigns";
/// Per advertiser, the newest wallet version applied (`_id` = user id).
const WALLET_VERSIONS: &str = "wallet_versions";

/// The MongoDB campaign store.
#[derive(Clone)]
pub struct MongoCampaigns {
    mongo: MongoHandle,
}

fn err(e: Error) -> CampaignStoreError {
    match *e.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. } => CampaignStoreError::Unavailable(e.to_string()),
        _ => CampaignStoreError::Other(e.to_string()),
    }
}

fn is_duplicate(e: &Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}

fn to_doc(c: &Campaign) -> Result<Document, CampaignStoreError> {
    let mut d =
        mongodb::bson::to_document(c).map_err(|e| CampaignStoreError::Other(e.to_string()))?;
    d.insert("_id", c.campaign_id.clone());
    Ok(d)
}

fn from_doc(mut d: Document) -> Result<Campaign, CampaignStoreError> {
    d.remove("_id");
    mongodb::bson::from_document(d)
        .map_err(|e| CampaignStoreError::Other(format!("stored campaign unreadable: {e}")))
}

impl MongoCampaigns {
    /// Campaigns in the handle's database.
    pub fn new(mongo: MongoHandle) -> MongoCampaigns {
        MongoCampaigns { mongo }
    }

    /// Uploaded assets: the GridFS bucket `assets`, file id = asset id.
    /// The stored file of asset `id`: the first complete one named so (a
    /// file's document is written only after all its chunks), or one
    /// stored under the asset's id itself, as uploads did before.
    async fn find_asset_file(
        &self,
        id: &str,
    ) -> Result<Option<mongodb::gridfs::FilesCollectionDocument>, CampaignStoreError> {
        self.assets()
            .find_one(doc! { "$or": [{ "filename": id }, { "_id": id }] })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(err)
    }

    fn assets(&self) -> mongodb::gridfs::GridFsBucket {
        self.mongo.db().gridfs_bucket(
            mongodb::options::GridFsBucketOptions::builder()
                .bucket_name("assets".to_owned())
                .build(),
        )
    }

    fn coll(&self) -> Collection<Document> {
        self.mongo.db().collection(COLLECTION)
    }

    /// The campaigns matching `filter`, in `sort` order, at most `limit`.
    async fn campaigns(
        &self,
        filter: Document,
        sort: Document,
        limit: Option<i64>,
    ) -> Result<Vec<Campaign>, CampaignStoreError> {
        let docs: Vec<Document> = self
            .coll()
            .find(filter)
            .sort(sort)
            .limit(limit.unwrap_or(0))
            .await
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)?;
        docs.into_iter().map(from_doc).collect()
    }
}

#[async_trait]
impl CampaignStore for MongoCampaigns {
    async fn migrate(&self) -> Result<MigrateReport, CampaignStoreError> {
        let indexes = vec![
            IndexModel::builder()
                .keys(doc! { "campaign_id": 1 })
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name("campaign_id_unique".to_owned())
                        .build(),
                )
                .build(),
            IndexModel::builder()
                .keys(doc! { "user_id": 1, "status": 1 })
                .options(
                    IndexOptions::builder()
                        .name("user_id_status".to_owned())
                        .build(),
                )
                .build(),
        ];
        self.coll().create_indexes(indexes).await.map_err(err)?;
        let mut report = MigrateReport {
            applied: vec![
                "campaigns index campaign_id_unique".into(),
                "campaigns index user_id_status".into(),
            ],
            skipped: Vec::new(),
        };
        let hello = self
            .mongo
            .db()
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(err)?;
        if hello.get_str("msg") == Ok("isdbgrid") {
            let admin = self.mongo.client.database("admin");
            let ns = format!("{}.{COLLECTION}", self.mongo.database);
            admin
                .run_command(doc! { "enableSharding": &self.mongo.database })
                .await
                .map_err(err)?;
            admin
                .run_command(doc! { "shardCollection": &ns, "key": { "user_id": "hashed" } })
                .await
                .map_err(err)?;
            report
                .applied
                .push(format!("sharded {ns} by hashed user_id"));
        } else {
            report
                .skipped
                .push("sharding by hashed user_id: not a sharded cluster (no mongos)".into());
        }
        Ok(report)
    }

    async fn insert(&self, c: &Campaign) -> Result<Inserted, CampaignStoreError> {
        match self.coll().insert_one(to_doc(c)?).await {
            Ok(_) => Ok(Inserted::New),
            Err(e) if is_duplicate(&e) => {
                let id = CampaignId::parse(&c.campaign_id)
                    .map_err(|e| CampaignStoreError::Other(e.to_string()))?;
                match self.get(&id).await? {
                    Some(existing) => Ok(Inserted::Exists(Box::new(existing))),
                    None => Err(CampaignStoreError::Other(
                        "a conflicting campaign vanished".into(),
                    )),
                }
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, CampaignStoreError> {
        self.coll()
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(err)?
            .map(from_doc)
            .transpose()
    }

    async fn list(
        &self,
        user: &UserId,
        only_active: bool,
    ) -> Result<Vec<Campaign>, CampaignStoreError> {
        let mut filter = doc! { "user_id": user.as_str() };
        if only_active {
            filter.insert("status", "active");
        }
        self.campaigns(filter, doc! { "campaign_id": 1 }, None)
            .await
    }

    async fn replace(
        &self,
        c: &Campaign,
        expected_version: i64,
    ) -> Result<bool, CampaignStoreError> {
        let res = self
            .coll()
            .replace_one(
                doc! { "_id": &c.campaign_id, "version": expected_version },
                to_doc(c)?,
            )
            .await
            .map_err(err)?;
        Ok(res.matched_count == 1)
    }

    async fn page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Campaign>, CampaignStoreError> {
        let filter = match after {
            Some(id) => doc! { "_id": { "$gt": id } },
            None => doc! {},
        };
        self.campaigns(filter, doc! { "_id": 1 }, Some(limit)).await
    }

    async fn wallet_version(&self, user: &UserId) -> Result<Option<i64>, CampaignStoreError> {
        let d = self
            .mongo
            .db()
            .collection::<Document>(WALLET_VERSIONS)
            .find_one(doc! { "_id": user.as_str() })
            .await
            .map_err(err)?;
        Ok(d.and_then(|d| d.get_i64("version").ok()))
    }

    async fn record_wallet_version(
        &self,
        user: &UserId,
        version: i64,
    ) -> Result<(), CampaignStoreError> {
        let res = self
            .mongo
            .db()
            .collection::<Document>(WALLET_VERSIONS)
            .update_one(
                doc! { "_id": user.as_str(), "version": { "$lt": version } },
                doc! { "$set": { "version": version } },
            )
            .upsert(true)
            .await;
        match res {
            Ok(_) => Ok(()),
            // A newer version is already recorded: the upsert's insert collides. Nothing to do.
            Err(e) if is_duplicate(&e) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Each upload writes its own GridFS file (its own id, named by the
    /// asset's hash), so a concurrent upload of the same bytes can never
    /// touch its chunks: GridFS cleans up a failed upload by its file id, and
    /// with a shared id one upload's failure deleted the other's chunks. The
    /// uploads that meet keep the file with the smallest id; each later one
    /// deletes only itself. A reader may briefly see two identical files.
    async fn put_asset(&self, asset: &Asset) -> Result<(), CampaignStoreError> {
        use futures::io::AsyncWriteExt;
        if self.find_asset_file(&asset.id).await?.is_some() {
            return Ok(()); // the same bytes, stored before
        }
        let bucket = self.assets();
        let own = mongodb::bson::Bson::ObjectId(mongodb::bson::oid::ObjectId::new());
        let mut up = bucket
            .open_upload_stream(&asset.id)
            .id(own.clone())
            .metadata(doc! { "content_type": &asset.content_type })
            .await
            .map_err(err)?;
        let written = async {
            up.write_all(&asset.bytes).await?;
            up.close().await
        }
        .await;
        written.map_err(|e| CampaignStoreError::Other(format!("storing asset: {e}")))?;
        // Several uploads met: the first file (smallest id) stays.
        if let Some(first) = self.find_asset_file(&asset.id).await?
            && first.id != own
            && let Err(e) = bucket.delete(own).await
        {
            tracing::debug!(error = %e, asset = %asset.id, "a duplicate asset upload was not removed");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), CampaignStoreError> {
        self.mongo.ping().await.map_err(err)
    }

    fn kind(&self) -> &'static str {
        "mongodb"
    }
}

#[async_trait]
impl AssetSource for MongoCampaigns {
    async fn get_asset(&self, id: &str) -> Result<Option<Asset>, CampaignStoreError> {
        use futures::io::AsyncReadExt;
        let Some(file) = self.find_asset_file(id).await? else {
            return Ok(None);
        };
        let content_type = file
            .metadata
            .as_ref()
            .and_then(|m| m.get_str("content_type").ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut down = self
            .assets()
            .open_download_stream(file.id)
            .await
            .map_err(err)?;
        let mut bytes = Vec::with_capacity(file.length as usize);
        down.read_to_end(&mut bytes)
            .await
            .map_err(|e| CampaignStoreError::Other(format!("reading asset: {e}")))?;
        Ok(Some(Asset {
            id: id.to_owned(),
            content_type,
            bytes,
        }))
    }
}
