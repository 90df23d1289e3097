use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::ParseError;

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read balances and history.
    Read,
    /// Deduct from wallets.
    Deduct,
    /// Create wallets and credit them.
    Credit,
    /// Make operator adjustments, positive or negative.
    Adjust,
    /// Read campaigns.
    CampaignsRead,
    /// Create, change, pause and resume campaigns.
    CampaignsWrite,
    /// Read `/metrics` on a service port (the admin listener needs no token).
    Metrics,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 7] = [
        Scope::Read,
        Scope::Deduct,
        Scope::Credit,
        Scope::Adjust,
        Scope::CampaignsRead,
        Scope::CampaignsWrite,
        Scope::Metrics,
    ];

    /// The scope's name, as written in tokens and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Deduct => "deduct",
            Scope::Credit => "credit",
            Scope::Adjust => "adjust",
            Scope::CampaignsRead => "campaigns_read",
            Scope::CampaignsWrite => "campaigns_write",
            Scope::Metrics => "metrics",
        }
    }

    /// Parses one scope name.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "scope",
                    format!("unknown scope {raw:?}; expected read, deduct, credit, adjust, campaigns_read, campaigns_write or metrics"),
                )
            })
    }
}

/// A set of scopes, stored as a comma-separated list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Every scope: the operator token's.
    pub fn all() -> Self {
        Scopes(Scope::ALL.to_vec())
    }

    /// Exactly these scopes.
    pub fn of(scopes: &[Scope]) -> Self {
        Scopes(scopes.to_vec())
    }

    /// Parses `read,deduct`; an empty list is refused.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Scope::parse(part)?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        if out.is_empty() {
            return Err(ParseError::new("scopes", "name at least one scope"));
        }
        Ok(Scopes(out))
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip() {
        let s = Scopes::parse("read, deduct,read").unwrap();
        assert_eq!(s.to_string(), "read,deduct");
        assert!(s.contains(Scope::Deduct));
        assert!(!s.contains(Scope::Adjust));
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("read,root").is_err());
    }
}
