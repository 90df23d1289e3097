use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

fn check(
    field: &'static str,
    raw: &str,
    max: usize,
    ok: impl Fn(char) -> bool,
) -> Result<(), ParseError> {
    if raw.is_empty() {
        return Err(ParseError::new(field, "must not be empty"));
    }
    if raw.len() > max {
        return Err(ParseError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if let Some(bad) = raw.chars().find(|c| !ok(*c)) {
        return Err(ParseError::new(
            field,
            format!("contains the character {bad:?}"),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `raw` and wraps it.
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                check($field, raw, $max, $ok)?;
                Ok(Self(raw.to_owned()))
            }

            /// The checked value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A user's id: 1–64 characters of `A-Z a-z 0-9 _ - .`.
    UserId,
    "user_id",
    64,
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
);

string_id!(
    /// A campaign's id: 1–64 characters of `A-Z a-z 0-9 _ - .`, chosen by
    /// whoever creates the campaign (creation is idempotent by it).
    CampaignId,
    "campaign_id",
    64,
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
);

string_id!(
    /// A region, the shard key of the design's `user_location`: 1–32
    /// characters of `A-Z 0-9 _`, e.g. `SOUTH_EAST`.
    Region,
    "region",
    32,
    |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
);

string_id!(
    /// A client's idempotency key: 1–128 printable ASCII characters.
    IdempotencyKey,
    "idempotency_key",
    128,
    |c: char| c.is_ascii_graphic()
);

impl UserId {
    /// A stable 64-bit hash of the id (FNV-1a), used to spread the users of a
    /// region over that region's replicas. Stable across processes and builds.
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.0.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked() {
        assert!(UserId::parse("alice-01.x_y").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn regions_are_upper_snake_case() {
        assert!(Region::parse("SOUTH_EAST").is_ok());
        assert!(Region::parse("south_east").is_err());
        assert!(Region::parse("SOUTH EAST").is_err());
    }

    #[test]
    fn idempotency_keys_are_printable() {
        assert!(IdempotencyKey::parse("k-1:2").is_ok());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: replica routing must not move users between releases.
        // FNV-1a test vector for "a".
        assert_eq!(
            UserId::parse("a").unwrap().stable_hash(),
            0xaf63_dc4c_8601_ec8c
        );
        assert_ne!(
            UserId::parse("a").unwrap().stable_hash(),
            UserId::parse("b").unwrap().stable_hash()
        );
    }
}
