//! The wallet area: its model, its rules (pure), the batching service, its
//! store (the SQL that moves money, on either engine) and the
//! `balance_updated` events it publishes.

pub mod events;
pub mod model;
pub mod rules;
mod service;
mod store;
pub use store::{GroupAnswer, MoneyConn, WalletStore};

pub use events::BalanceUpdated;
pub use model::{
    EntryKind, HistoryPage, LedgerEntry, MoneyCommand, Outcome, Refusal, StoredAnswer, Wallet,
    WalletRead,
};
pub use service::{Limits, MAX_BATCH, WalletService};
