//! walletctl's core, laid out by area, lowest layer first (an area imports
//! only those above it in this list; `tests/house` checks it):
//!
//! * [`domain`]: parsed types shared by every area (ids, money, time);
//! * [`config`]: the configuration, read once, one file per section;
//! * [`platform`]: what several areas share: the SQL pool handle (`Db`) and
//!   its plumbing, tokens and scopes, the audit trail, Redis and MongoDB;
//! * [`events`] and [`lock`]: the ports, each with its embedded and
//!   distributed adapter side by side (the event log and its outbox; the
//!   per-user lock);
//! * [`shards`]: the region → replica map and replica status;
//! * [`wallet`]: balances and the money path (model, rules, service, store,
//!   `balance_updated`);
//! * [`ads`]: advertising management (campaigns, their store and cache,
//!   following the wallet, `campaign_paused` / `campaign_resumed`);
//! * [`display`]: ad display (deciding, signing, recording `ad_events`);
//! * [`billing`]: what an ad event costs and charging it exactly once;
//! * [`app`]: the composition root that opens the backends and each area's store;
//! * [`ops`]: the operator's tools that span areas (reconcile, replay, gc).
//!
//! Each area owns its SQL in a store of its own over the shared [`platform::sql::Db`].
//! The HTTP services live in `walletctl-daemon`; the binary in `walletctl`.

pub mod ads;
pub mod app;
pub mod billing;
pub mod config;
pub mod display;
pub mod domain;
pub mod events;
pub mod lock;
pub mod ops;
pub mod platform;
pub mod shards;
pub mod wallet;

pub use app::{Backends, Probe};
pub use config::Config;
pub use domain::now_ms;
