//! Billing: what an ad event costs (`rules.rs`, no I/O), what a batch of
//! events comes to (`plan.rs`, no I/O), and charging it exactly once
//! (`store.rs`, one SQL transaction per batch with the wallet's own money
//! path inside it). `biller.rs` drives it for the billing worker and replay.

pub mod biller;
mod model;
mod plan;
pub mod rules;
mod store;

pub use biller::Biller;
pub use model::{BillStatus, Billed, CampaignBilling, EventRecord};
pub use rules::{Counters, Decision, Serving, Terms, UnbilledReason};
pub use store::{BillingStore, LedgerCheck};

/// The caller name billing's wallet charges are recorded under; their
/// idempotency keys are `ad:{event_id}` in its namespace.
pub const ACTOR: &str = "billing";
