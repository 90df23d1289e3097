//! The three HTTP services of walletctl (wallet, advertising management, ad
//! display) and their background workers. `serve` takes its listeners and
//! its shutdown signal from the caller, so tests bind port 0 and share the
//! path production runs.

pub mod auth;
pub mod error;
pub mod extract;
pub mod health;
pub mod relay;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod wallet;

pub use server::{Listeners, Service, serve};
pub use state::AppState;
