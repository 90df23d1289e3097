//! Limits that make load and abuse degrade cleanly instead of piling up:
//! a deadline on every request (see [`super::edge`]), a deadline on reading request headers, and
//! a cap on request bodies.

use std::time::Duration;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a client may take to send its request headers before the
/// connection is closed (slow-header clients hold no worker for longer).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
