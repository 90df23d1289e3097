//! One MongoDB client and the database this process uses, shared by every
//! area that stores documents. Connects lazily: a MongoDB that is down at
//! start-up shows on `/readyz` instead of stopping the process.

use std::time::Duration;

use mongodb::bson::doc;

use crate::config::MongoConfig;

/// How long server selection and connecting may take before an operation fails.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A MongoDB client and its database name. Cheap to clone.
#[derive(Clone)]
pub struct MongoHandle {
    /// The client (a pool underneath).
    pub client: mongodb::Client,
    /// The database every collection lives in.
    pub database: String,
}

impl MongoHandle {
    /// Parses the configuration; connects on first use.
    pub async fn open(config: &MongoConfig) -> Result<MongoHandle, mongodb::error::Error> {
        let mut opts = mongodb::options::ClientOptions::parse(config.url.expose()).await?;
        opts.server_selection_timeout = Some(TIMEOUT);
        opts.connect_timeout = Some(TIMEOUT);
        opts.app_name = Some("walletctl".into());
        Ok(MongoHandle {
            client: mongodb::Client::with_options(opts)?,
            database: config.database.clone(),
        })
    }

    /// The database.
    pub fn db(&self) -> mongodb::Database {
        self.client.database(&self.database)
    }

    /// `ping`.
    pub async fn ping(&self) -> Result<(), mongodb::error::Error> {
        self.db().run_command(doc! { "ping": 1 }).await.map(|_| ())
    }
}
