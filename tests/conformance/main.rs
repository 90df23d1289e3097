//! The conformance suite: every test in `conformance!` runs twice, against
//! the embedded default and against the real stack, and must behave the same.
//! Tests of things only the distributed mode has (replicas, PgBouncer, Redis,
//! two instances) are plain `#[tokio::test]`s on the real stack.

mod accounts;
mod backends_down;
mod bad_input;
mod batching;
mod billing;
mod browser;
mod campaigns;
mod concurrency;
mod differential;
mod display;
mod hardening;
mod health;
mod idempotency;
mod locks;
mod outbox;
mod pgbouncer;
mod reconcile;
mod replay;
mod replicas;
mod retention;
mod shutdown;
mod wallet_api;

use serde_json::json;

/// A random user id.
pub fn user() -> String {
    format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A random idempotency key.
pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `{"amount": n}`.
pub fn amount(n: i64) -> serde_json::Value {
    json!({ "amount": n })
}
