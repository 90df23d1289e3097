//! The three HTTP services of walletctl (wallet, advertising management, ad
//! display) and their background workers. `serve` takes its listeners and
//! its shutdown signal from the caller, so tests bind port 0 and share the
//! path production runs.
//!
//! * [`http`]: the edge every service shares (errors, extractors, auth,
//!   health and readiness, telemetry, limits);
//! * [`wallet`], [`ads`], [`display`]: each service's handlers, DTOs and
//!   OpenAPI document; handlers parse, call their area's service and answer;
//! * [`workers`]: the background loops, one file each (the outbox relay,
//!   the `balance_updated` and `campaign_created` consumers, the campaign
//!   cache rebuild, billing, retention, reconciliation) and the
//!   consume-apply-commit loop they share;
//! * [`serve`](mod@serve): bootstrap (migrations, tokens, keys), listeners
//!   and routers, the workers each service brings, graceful shutdown;
//! * [`state`]: what every handler shares.

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
