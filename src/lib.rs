//! walletctl's core, laid out by area:
//!
//! * [`domain`]: parsed types shared by every area (ids, money);
//! * [`platform`]: what several areas share (SQL, auth, audit, Redis, MongoDB);
//! * [`events`] and [`lock`]: the ports, each with its embedded and
//!   distributed adapter side by side;
//! * [`wallet`]: one area (model, service, store, events);
//! * [`app`]: the composition root that opens the backends.
//!
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
