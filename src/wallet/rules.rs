//! The money rules that need no database: what a command does to a balance.
//! The SQLite path calls these; `walletctl_apply_group` (PostgreSQL) states
//! the same rules in PL/pgSQL, and the conformance suite holds both to the
//! same answers.

use super::model::Refusal;
use crate::domain::MAX_BALANCE;

/// The balance after applying `delta` to `balance`, or why not: never below
/// zero, never above [`MAX_BALANCE`].
pub fn apply(balance: i64, delta: i64) -> Result<i64, Refusal> {
    // Both are bounded far inside i64 (|delta| <= MAX_AMOUNT, balance <= MAX_BALANCE),
    // but saturate anyway: an overflow must refuse, never wrap.
    let next = balance.saturating_add(delta);
    if (0..=MAX_BALANCE).contains(&next) {
        Ok(next)
    } else {
        let requested = delta.saturating_abs();
        Err(if delta < 0 {
            Refusal::InsufficientFunds { balance, requested }
        } else {
            Refusal::BalanceLimitExceeded { balance, requested }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_balance_stays_within_its_bounds(balance in 0..=MAX_BALANCE, delta in -MAX_BALANCE..=MAX_BALANCE) {
            match apply(balance, delta) {
                Ok(next) => {
                    prop_assert!((0..=MAX_BALANCE).contains(&next));
                    prop_assert_eq!(next, balance + delta);
                }
                Err(Refusal::InsufficientFunds { balance: b, requested }) => {
                    prop_assert!(delta < 0 && requested > b && b == balance);
                }
                Err(Refusal::BalanceLimitExceeded { balance: b, requested }) => {
                    prop_assert!(delta > 0 && b + requested > MAX_BALANCE);
                }
            }
        }
    }

    #[test]
    fn exact_funds_are_enough() {
        assert_eq!(apply(100, -100), Ok(0));
        assert_eq!(
            apply(99, -100),
            Err(Refusal::InsufficientFunds {
                balance: 99,
                requested: 100
            })
        );
        assert_eq!(apply(MAX_BALANCE - 1, 1), Ok(MAX_BALANCE));
        assert!(apply(MAX_BALANCE, 1).is_err());
    }
}
