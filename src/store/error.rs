use std::path::PathBuf;

/// What can go wrong in the store, as the HTTP edge needs to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No wallet for that user.
    #[error("wallet not found")]
    WalletNotFound,
    /// A wallet for that user already exists.
    #[error("a wallet for this user already exists")]
    WalletExists,
    /// A token with that name already exists.
    #[error("a token with this name already exists")]
    TokenExists,
    /// A replica name that is not in the configuration.
    #[error("unknown replica {0:?}; it must be named in postgres.replicas")]
    UnknownReplica(String),
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// The database could not be reached in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error: a bug or an operator problem.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// An invariant did not hold or an answer could not be produced: a bug.
    #[error("{0}")]
    Failed(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The data directory could not be prepared.
    #[error("cannot prepare {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// Whether the error says the database could not be reached (a 503, not a 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// A copy for another waiter of the same failed batch.
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::WalletNotFound => StoreError::WalletNotFound,
            StoreError::WalletExists => StoreError::WalletExists,
            StoreError::IdempotencyKeyReused => StoreError::IdempotencyKeyReused,
            StoreError::TokenExists => StoreError::TokenExists,
            StoreError::UnknownReplica(r) => StoreError::UnknownReplica(r.clone()),
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            other => StoreError::Failed(other.to_string()),
        }
    }

    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}
