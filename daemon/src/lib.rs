//! The three HTTP services of walletctl (wallet, advertising management, ad
//! display) and their background workers. `serve` takes its listeners and
//! its shutdown signal from the caller, so tests bind port 0 and share the
//! path production runs.
//!
//! * [`http`]: the edge every service shares (errors, extractors, auth,
//!   health, telemetry, limits);
//! * [`wallet`]: the wallet service's handlers and DTOs;
//! * [`ads`]: the advertising management service's handlers and DTOs;
//! * [`workers`]: background loops (the outbox relay);
//! * [`serve`](mod@serve): listeners, routers, graceful shutdown.

pub mod ads;
pub mod display;
pub mod http;
pub mod serve;
pub mod service;
pub mod state;
pub mod wallet;
pub mod workers;

pub use serve::{Listeners, serve};
pub use service::Service;
pub use state::AppState;
