//! Who may call: bearer tokens (only their digest is stored), the scopes
//! each one carries and the advertiser accounts it is bound to.

mod grant;
mod scopes;
mod tokens;

pub use grant::{Accounts, Grant, MONEY_SCOPES, is_reserved, parse_token_name};
pub use scopes::{Scope, Scopes};
pub use tokens::{NewToken, TokenInfo, TokenListing, TokenStore, digest, secret_digest};
