//! The ad display area: the signed tokens behind impression and click URLs,
//! the `ad_events` event they become, and the weighted pick among
//! candidates. No I/O here; the HTTP side is in `walletctl-daemon`.

pub mod event;
pub mod frequency;
pub mod management;
pub mod pick;
pub mod token;

pub use event::{AdEvent, AdEventKind};
pub use token::{Claims, Signer, TokenError};

use crate::domain::ParseError;

/// An ad slot or a viewer id: 1–64 characters of `A-Z a-z 0-9 _ - . :`.
pub fn parse_label(field: &'static str, v: &str) -> Result<String, ParseError> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err(ParseError::new(
            field,
            "must be 1-64 characters of A-Z a-z 0-9 _ - . :",
        ));
    }
    Ok(v.to_owned())
}
