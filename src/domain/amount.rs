use serde::{Deserialize, Serialize};

use super::ParseError;

/// The largest amount one operation may move, in minor units (10^15).
///
/// Together with [`MAX_BALANCE`] this keeps every sum of a balance and an
/// amount far inside `i64`, so no arithmetic on money can overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// The largest balance a wallet may hold, in minor units (10^15).
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// A strictly positive amount of money in minor units, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    /// Accepts `1..=MAX_AMOUNT`.
    pub fn new(minor_units: i64) -> Result<Self, ParseError> {
        if minor_units <= 0 {
            return Err(ParseError::new(
                "amount",
                "must be a positive integer in minor units",
            ));
        }
        if minor_units > MAX_AMOUNT {
            return Err(ParseError::new(
                "amount",
                format!("must be at most {MAX_AMOUNT} minor units"),
            ));
        }
        Ok(Self(minor_units))
    }

    /// The amount in minor units.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Reads a JSON integer in minor units. As in JSON Schema, a number with no
/// fractional part (`840.0`, `1e3`) is that integer; one with a fraction
/// (`1.5`), a string or anything else is refused. Every amount walletctl
/// accepts (at most 10^15) is exact in an `f64`.
fn minor_units<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Units;
    impl serde::de::Visitor<'_> for Units {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer number of minor units")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("amount: out of range"))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            let limit = MAX_AMOUNT as f64;
            if v.fract() == 0.0 && v.abs() <= limit {
                Ok(v as i64)
            } else if v.fract() != 0.0 {
                Err(E::custom("amount: must be a whole number of minor units"))
            } else {
                Err(E::custom(format!(
                    "amount: must be within ±{MAX_AMOUNT} minor units"
                )))
            }
        }
    }
    d.deserialize_any(Units)
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = minor_units(d)?;
        Amount::new(raw).map_err(serde::de::Error::custom)
    }
}

/// A non-zero amount that may be negative: an operator adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SignedAmount(i64);

impl SignedAmount {
    /// Accepts `-MAX_AMOUNT..=MAX_AMOUNT` except zero.
    pub fn new(minor_units: i64) -> Result<Self, ParseError> {
        if minor_units == 0 {
            return Err(ParseError::new("amount", "must not be zero"));
        }
        if minor_units.unsigned_abs() > MAX_AMOUNT as u64 {
            return Err(ParseError::new(
                "amount",
                format!("must be within ±{MAX_AMOUNT} minor units"),
            ));
        }
        Ok(Self(minor_units))
    }

    /// The signed amount in minor units.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for SignedAmount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = minor_units(d)?;
        SignedAmount::new(raw).map_err(serde::de::Error::custom)
    }
}

/// A wallet balance in minor units; never negative, never above [`MAX_BALANCE`].
pub type Balance = i64;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_negative_and_huge_are_refused() {
        assert!(Amount::new(0).is_err());
        assert!(Amount::new(-1).is_err());
        assert!(Amount::new(MAX_AMOUNT + 1).is_err());
        assert!(Amount::new(i64::MAX).is_err());
        assert_eq!(Amount::new(MAX_AMOUNT).unwrap().get(), MAX_AMOUNT);
        assert!(SignedAmount::new(0).is_err());
        assert!(SignedAmount::new(i64::MIN).is_err());
        assert_eq!(SignedAmount::new(-5).unwrap().get(), -5);
    }

    #[test]
    fn json_floats_and_strings_are_refused() {
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
        assert!(serde_json::from_str::<Amount>("\"10\"").is_err());
        assert!(serde_json::from_str::<Amount>("99999999999999999999").is_err());
        assert_eq!(serde_json::from_str::<Amount>("10").unwrap().get(), 10);
        // JSON Schema's "integer": a number without a fraction is that integer.
        assert_eq!(serde_json::from_str::<Amount>("840.0").unwrap().get(), 840);
        assert_eq!(
            serde_json::from_str::<SignedAmount>("-1e3").unwrap().get(),
            -1000
        );
        assert!(serde_json::from_str::<Amount>("1e16").is_err());
        assert!(serde_json::from_str::<Amount>("0.0").is_err());
    }

    proptest! {
        #[test]
        fn accepted_amounts_round_trip(a in 1..=MAX_AMOUNT) {
            let json = serde_json::to_string(&Amount::new(a).unwrap()).unwrap();
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap().get(), a);
        }
    }
}
