//! Operations that span areas: retention (`walletctl gc`) and reconciliation (`walletctl reconcile`).

pub mod reconcile;
pub mod retention;
