use std::path::PathBuf;

/// What can go wrong in an area's SQL store, as the HTTP edge needs to tell
/// apart. No variant names an area: the area says what was missing or
/// taken (`NotFound("wallet")`, `Exists("token")`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that key: a `wallet` for that user, …
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A row with that key already exists: a `wallet` for that user, a
    /// `token` with that name, …
    #[error("a {0} with this key already exists")]
    Exists(&'static str),
    /// A value the caller gave was refused (a reserved token name…);
    /// nothing was done.
    #[error("{0}")]
    Invalid(crate::domain::ParseError),
    /// A name the configuration does not know (a `replica`).
    #[error("unknown {what} {name:?}; it must be named in the configuration")]
    Unknown {
        /// What kind of name.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// The database could not be reached in time; nothing was done.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database failed while a transaction was open or committing (a lost
    /// connection, a deadlock, a cancelled statement, a failed commit): it may
    /// or may not have committed. Retrying with the same idempotency key
    /// finds out safely.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Too much is queued for this user; nothing was done.
    #[error("too many commands are waiting for this wallet")]
    Overloaded,
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
        match &e {
            // No connection was handed out: nothing was sent.
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            // The connection broke under a statement: whatever it was doing
            // may or may not have happened.
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
                StoreError::OutcomeUnknown(e.to_string())
            }
            sqlx::Error::Database(db) if is_transient(db.code().as_deref()) => {
                StoreError::OutcomeUnknown(e.to_string())
            }
            _ => StoreError::Database(e),
        }
    }
}

/// SQLSTATEs (and SQLite codes) of failures that are about timing or
/// connectivity, not about the request: the same request may succeed later.
fn is_transient(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    matches!(
        code,
        "40001" // serialization_failure
        | "40P01" // deadlock_detected
        | "55P03" // lock_not_available (lock_timeout)
        | "57014" // query_canceled (statement_timeout)
        | "57P01" | "57P02" | "57P03" // admin/crash shutdown, cannot connect now
        | "53300" // too_many_connections
        | "25P03" // idle_in_transaction_session_timeout
        | "5" | "6" | "261" | "517" // SQLITE_BUSY, SQLITE_LOCKED and their extended codes
    ) || code.starts_with("08") // connection_exception
}

impl StoreError {
    /// Whether the error says the database could not be reached (a 503, not a 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether the database may or may not have applied what was asked.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, StoreError::OutcomeUnknown(_))
    }

    /// A copy for another waiter of the same failed batch.
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::NotFound(what) => StoreError::NotFound(what),
            StoreError::Exists(what) => StoreError::Exists(what),
            StoreError::IdempotencyKeyReused => StoreError::IdempotencyKeyReused,
            StoreError::Invalid(e) => StoreError::Invalid(e.clone()),
            StoreError::Unknown { what, name } => StoreError::Unknown {
                what,
                name: name.clone(),
            },
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::OutcomeUnknown(m) => StoreError::OutcomeUnknown(m.clone()),
            StoreError::Overloaded => StoreError::Overloaded,
            other => StoreError::Failed(other.to_string()),
        }
    }

    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}
