//! Billing: what an ad event costs (`rules.rs`, no I/O) and charging it
//! exactly once (`store.rs`, one SQL transaction per event with the
//! wallet's own money path inside it).

pub mod biller;
pub mod rules;
mod store;

pub use biller::Biller;
pub use rules::{Counters, Decision, Terms, UnbilledReason};
pub use store::{BillStatus, Billed, CampaignBilling, EventRecord};

/// The caller name billing's wallet charges are recorded under; their
/// idempotency keys are `ad:{event_id}` in its namespace.
pub const ACTOR: &str = "billing";
