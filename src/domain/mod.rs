//! Domain types. Each can only be built through `parse`/`new`, so a value in
//! hand is always valid: raw strings and integers stop at the edge.

mod amount;
mod ids;
pub mod strict;

pub use amount::{Amount, Balance, MAX_AMOUNT, MAX_BALANCE, SignedAmount};
pub use ids::{CampaignId, IdempotencyKey, Region, UserId};

/// Why a raw value was refused. The message is safe to show to a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    /// The field or value that was refused, e.g. `amount`.
    pub field: &'static str,
    /// What is wrong with it, in words a caller can act on.
    pub reason: String,
}

/// Milliseconds since the Unix epoch: every timestamp walletctl stores.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl ParseError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
