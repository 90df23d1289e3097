//! Background loops that run beside the HTTP services, one file per loop.

pub mod balance_updated;
pub mod billing;
pub mod campaign_cache;
pub mod campaign_created;
pub mod consumer;
pub mod gc;
pub mod outbox_relay;
