//! What a token may reach: its scopes, and the advertiser accounts (wallet
//! user ids) it is bound to. An unbound token is an operator's or a
//! service's and reaches every account; a bound token is an advertiser's
//! and reaches only its own, and can never move money.

use std::collections::BTreeSet;
use std::fmt;

use super::{Scope, Scopes};
use crate::domain::{ParseError, UserId};

/// The accounts a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Accounts {
    /// Unbound: an operator or service token, every account.
    #[default]
    All,
    /// Bound to these accounts only (never empty).
    Only(BTreeSet<UserId>),
}

impl Accounts {
    /// Parses the stored or typed form: empty for unbound, else user ids
    /// separated by commas.
    pub fn parse(raw: &str) -> Result<Accounts, ParseError> {
        let ids = raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(UserId::parse)
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(if ids.is_empty() {
            Accounts::All
        } else {
            Accounts::Only(ids)
        })
    }

    /// Bound to exactly these accounts (`All` when none are given).
    pub fn of(ids: impl IntoIterator<Item = UserId>) -> Accounts {
        let ids: BTreeSet<UserId> = ids.into_iter().collect();
        if ids.is_empty() {
            Accounts::All
        } else {
            Accounts::Only(ids)
        }
    }

    /// Whether a token with these accounts reaches `user`'s wallet and campaigns.
    pub fn reach(&self, user: &str) -> bool {
        match self {
            Accounts::All => true,
            Accounts::Only(ids) => ids.iter().any(|id| id.as_str() == user),
        }
    }

    /// Whether the token is bound to accounts (an advertiser's).
    pub fn is_bound(&self) -> bool {
        matches!(self, Accounts::Only(_))
    }
}

impl fmt::Display for Accounts {
    /// The stored form: empty when unbound.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accounts::All => Ok(()),
            Accounts::Only(ids) => {
                let ids: Vec<&str> = ids.iter().map(UserId::as_str).collect();
                f.write_str(&ids.join(","))
            }
        }
    }
}

/// The scopes that move money: never given to a bound token.
pub const MONEY_SCOPES: [Scope; 3] = [Scope::Deduct, Scope::Credit, Scope::Adjust];

/// What a token may do and reach. Built only through [`Grant::new`], so a
/// bound token never holds a money-moving scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    scopes: Scopes,
    accounts: Accounts,
}

impl Grant {
    /// Scopes over accounts; refuses a money-moving scope on a bound token.
    pub fn new(scopes: Scopes, accounts: Accounts) -> Result<Grant, ParseError> {
        if accounts.is_bound()
            && let Some(s) = MONEY_SCOPES.iter().find(|s| scopes.contains(**s))
        {
            return Err(ParseError::new(
                "scopes",
                format!(
                    "a token bound to accounts cannot move money: drop {:?} (money-moving scopes deduct, credit and adjust belong to operator and service tokens)",
                    s.as_str()
                ),
            ));
        }
        Ok(Grant { scopes, accounts })
    }

    /// Unbound, with these scopes.
    pub fn unbound(scopes: Scopes) -> Grant {
        Grant {
            scopes,
            accounts: Accounts::All,
        }
    }

    /// The scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }
}

impl From<&Scopes> for Grant {
    fn from(scopes: &Scopes) -> Grant {
        Grant::unbound(scopes.clone())
    }
}

/// Names no API token can take: walletctl's own callers. Billing records
/// its charges, and keys its idempotency, as `billing`; `serve` creates the
/// `operator` token and the ads and display services' own tokens. A token
/// of one of these names would share their idempotency namespace.
const RESERVED: [&str; 3] = ["billing", "operator", "walletctl"];
const RESERVED_PREFIXES: [&str; 3] = ["ads-service", "display-service", "walletctl-"];

/// Whether `name` belongs to walletctl's own callers.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// A token's name as an API caller may choose it: 1–64 characters of
/// `A-Z a-z 0-9 _ - .`, and none of walletctl's own callers' names.
pub fn parse_token_name(raw: &str) -> Result<String, ParseError> {
    if raw.is_empty()
        || raw.len() > 64
        || !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(ParseError::new(
            "name",
            "must be 1-64 characters of A-Z a-z 0-9 _ - .",
        ));
    }
    if is_reserved(raw) {
        return Err(ParseError::new(
            "name",
            format!(
                "{raw:?} is reserved for walletctl's own callers (billing, operator, the ads and display services)"
            ),
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Scopes {
        Scopes::parse(s).unwrap()
    }

    #[test]
    fn a_bound_token_never_moves_money() {
        let acme = Accounts::parse("acme").unwrap();
        for money in ["deduct", "credit", "adjust", "read,credit"] {
            assert!(Grant::new(scopes(money), acme.clone()).is_err(), "{money}");
        }
        let g = Grant::new(scopes("read,campaigns_read,campaigns_write"), acme).unwrap();
        assert!(g.accounts().reach("acme") && !g.accounts().reach("globex"));
        assert!(Grant::new(scopes("deduct,credit,adjust"), Accounts::All).is_ok());
    }

    #[test]
    fn accounts_round_trip_and_unbound_reaches_all() {
        let a = Accounts::parse(" b,a,,b ").unwrap();
        assert_eq!(a.to_string(), "a,b");
        assert_eq!(Accounts::parse(&a.to_string()).unwrap(), a);
        assert_eq!(Accounts::parse("").unwrap(), Accounts::All);
        assert!(Accounts::All.reach("anyone") && !Accounts::All.is_bound());
        assert!(Accounts::parse("a b").is_err());
    }

    #[test]
    fn reserved_names_are_refused() {
        for name in [
            "billing",
            "Billing",
            "operator",
            "ads-service-1a2b",
            "display-service",
            "walletctl-x",
        ] {
            assert!(parse_token_name(name).is_err(), "{name}");
            assert!(is_reserved(name), "{name}");
        }
        for name in ["acme-api", "shop-b", "pgb", "bill"] {
            assert_eq!(parse_token_name(name).unwrap(), name);
        }
        assert!(parse_token_name("").is_err() && parse_token_name("a b").is_err());
    }
}
