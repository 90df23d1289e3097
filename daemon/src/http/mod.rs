//! The HTTP edge every service shares: the one error type and its JSON
//! shape, extractors, authentication, health and readiness, telemetry, and
//! the limits that keep load and abuse from reaching the backends.

pub mod auth;
pub mod error;
pub mod extract;
pub mod health;
pub mod limits;
pub mod telemetry;
