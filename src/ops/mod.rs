//! Operations that span areas: retention (`walletctl gc`).

pub mod retention;
