//! The wallet area: its model, the batching service, the SQL that moves money,
//! and the `balance_updated` events it publishes.

pub mod events;
pub mod model;
pub mod rules;
mod service;
mod store;
pub(crate) use store::MoneyConn;

pub use events::BalanceUpdated;
pub use model::{
    EntryKind, HistoryPage, LedgerEntry, MoneyCommand, Outcome, Refusal, StoredAnswer, Wallet,
    WalletRead,
};
pub use service::{Limits, MAX_BATCH, WalletService};
