//! Dead letters: a message a consumer cannot apply, set aside on
//! `{topic}.dead` with why, so the consumer moves on. A dead letter is
//! bounded whatever the message held (a hostile payload of any size, or of
//! control characters that JSON escapes six-fold): the original is kept up
//! to [`MAX_PAYLOAD_BYTES`], with its full size and SHA-256 to find it by,
//! and its topic, partition and offset to read it whole from the log.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Message;

/// The most bytes of the original payload a dead letter keeps.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// The most bytes of the error text a dead letter keeps.
pub const MAX_ERROR_BYTES: usize = 1024;

/// The most a dead letter's JSON can take: the kept payload and key with
/// every byte escaped six-fold (`\u0001`), the error, and the fixed fields.
/// Far below any producer's limit (librdkafka's default is 1,000,000).
pub const MAX_DEAD_LETTER_BYTES: usize = 6 * (MAX_PAYLOAD_BYTES + MAX_ERROR_BYTES + 2 * 256) + 1024;

/// A dead letter as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why, as a stable word (`malformed`, `invalid`, `campaign_exists`).
    pub reason: String,
    /// The error, at most [`MAX_ERROR_BYTES`].
    pub error: String,
    /// Where the original is: its topic, partition and offset.
    pub topic: String,
    /// The original's partition.
    pub partition: i32,
    /// The original's offset.
    pub offset: i64,
    /// The original's key, at most 256 bytes.
    pub key: String,
    /// The original payload, at most [`MAX_PAYLOAD_BYTES`] of it.
    pub payload: String,
    /// Whether `payload` was cut short.
    pub truncated: bool,
    /// The original payload's size in bytes.
    pub payload_bytes: usize,
    /// The SHA-256 of the whole original payload, hex.
    pub payload_sha256: String,
    /// When it was set aside, ms since the epoch.
    pub failed_at_ms: i64,
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl DeadLetter {
    /// The dead letter of `message`, which could not be applied for `reason`.
    pub fn of(message: &Message, reason: &str, error: &str, now_ms: i64) -> DeadLetter {
        let payload = prefix(&message.payload, MAX_PAYLOAD_BYTES);
        DeadLetter {
            reason: prefix(reason, 64).to_owned(),
            error: prefix(error, MAX_ERROR_BYTES).to_owned(),
            topic: message.topic.clone(),
            partition: message.partition,
            offset: message.offset,
            key: prefix(&message.key, 256).to_owned(),
            truncated: payload.len() < message.payload.len(),
            payload: payload.to_owned(),
            payload_bytes: message.payload.len(),
            payload_sha256: hex::encode(Sha256::digest(message.payload.as_bytes())),
            failed_at_ms: now_ms,
        }
    }

    /// Its JSON, at most [`MAX_DEAD_LETTER_BYTES`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message(payload: String, key: String) -> Message {
        Message {
            topic: "campaign_created".into(),
            key,
            payload,
            partition: 3,
            offset: 42,
        }
    }

    #[test]
    fn a_huge_control_character_payload_makes_a_small_dead_letter() {
        let hostile: String = (0..2 * 1024 * 1024)
            .map(|i| char::from((i % 31 + 1) as u8))
            .collect();
        let d = DeadLetter::of(
            &message(hostile.clone(), "k".into()),
            "malformed",
            &hostile,
            1,
        );
        let json = d.to_json();
        assert!(json.len() <= MAX_DEAD_LETTER_BYTES, "{} bytes", json.len());
        assert!(d.truncated && d.payload_bytes == hostile.len());
        assert_eq!(
            d.payload_sha256,
            hex::encode(Sha256::digest(hostile.as_bytes()))
        );
        assert!(hostile.starts_with(&d.payload));
        assert_eq!(
            (d.topic.as_str(), d.partition, d.offset),
            ("campaign_created", 3, 42)
        );
        let back: DeadLetter = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    proptest! {
        #[test]
        fn every_dead_letter_is_bounded(payload in ".{0,40000}", key in ".{0,600}", error in ".{0,3000}") {
            let d = DeadLetter::of(&message(payload.clone(), key), "invalid", &error, 7);
            prop_assert!(d.to_json().len() <= MAX_DEAD_LETTER_BYTES);
            prop_assert!(payload.starts_with(&d.payload));
            prop_assert_eq!(d.truncated, d.payload.len() < payload.len());
        }
    }
}
