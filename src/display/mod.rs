//! The ad display area: the service that decides and records
//! (`service.rs`), the candidates it holds (`candidates.rs`, read from the
//! management service through `management.rs`), the signed tokens behind
//! impression and click URLs (`token.rs`), the `ad_events` event they
//! become (`event.rs`), the weighted pick (`pick.rs`, pure) and the
//! frequency cap (`frequency.rs`). The HTTP side is in `walletctl-daemon`.

pub mod candidates;
pub mod event;
pub mod frequency;
pub mod management;
pub mod pick;
pub mod service;
pub mod token;

pub use candidates::Candidates;
pub use event::{AdEvent, AdEventKind};
pub use service::{
    AdAnswer, AdRequest, AssetCache, DisplayService, RecordError, ShownCreative, asset_cache,
};
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
