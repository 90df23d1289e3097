//! Who may call: bearer tokens (only their digest is stored) and the scopes
//! each one carries.

mod scopes;
mod tokens;

pub use scopes::{Scope, Scopes};
pub use tokens::{NewToken, TokenInfo, TokenStore, digest, secret_digest};
