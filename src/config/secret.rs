use std::fmt;

use serde::{Deserialize, Serialize};

/// A connection URL that may carry a password. It prints and serializes with
/// the password replaced by `***`; only [`SecretUrl::expose`] gives it out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL with its password, for connecting. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return url.clone();
        };
        let userinfo = &rest[..at];
        let user = userinfo.split(':').next().unwrap_or("");
        if !userinfo.contains(':') {
            return url.clone();
        }
        format!("{}://{}:***{}", &url[..scheme_end], user, &rest[at..])
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// A secret such as an API token: prints and serializes as `***`; only
/// [`Secret::expose`] gives it out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for sending. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("wct_abc");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "wct_abc");
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            SecretUrl::new("postgres://u:p@h:1/d?x=1").redacted(),
            "postgres://u:***@h:1/d?x=1"
        );
        assert_eq!(
            SecretUrl::new("redis://:pw@h:1").redacted(),
            "redis://:***@h:1"
        );
        assert_eq!(
            SecretUrl::new("postgres://u@h/d").redacted(),
            "postgres://u@h/d"
        );
        assert_eq!(
            SecretUrl::new("mongodb://h:1/?directConnection=true").redacted(),
            "mongodb://h:1/?directConnection=true"
        );
        assert_eq!(
            SecretUrl::new("postgres://u:p%40x@h/d").redacted(),
            "postgres://u:***@h/d"
        );
    }
}
