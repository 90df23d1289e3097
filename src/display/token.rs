//! Impression and click tokens: `{key id}.{claims}.{mac}`, the claims as
//! base64url JSON and the mac an HMAC-SHA256 of the first two parts. Any
//! instance holding the key verifies a token another signed. Several keys
//! may be configured: the first signs, every one verifies, so a new key is
//! rotated in first as a second key, then moved to the front, and the old
//! one removed once its tokens have expired.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::event::{AdEventKind, event_id};
use crate::config::SigningKey;

type HmacSha256 = Hmac<Sha256>;

/// What a token says, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The ad decision (random, unique).
    #[serde(rename = "d")]
    pub decision: String,
    /// Impression or click.
    #[serde(rename = "t")]
    pub kind: AdEventKind,
    /// The campaign.
    #[serde(rename = "c")]
    pub campaign_id: String,
    /// Its advertiser.
    #[serde(rename = "u")]
    pub user_id: String,
    /// The publisher's slot.
    #[serde(rename = "s")]
    pub slot: String,
    /// The viewer, if named.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub viewer: Option<String>,
    /// Where a click goes (click tokens only).
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<String>,
    /// Seconds since the epoch after which the token is refused.
    #[serde(rename = "x")]
    pub expires_at: i64,
}

impl Claims {
    /// The event this token becomes: the same id however often it is used.
    pub fn event_id(&self) -> String {
        event_id(self.kind, &self.decision)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all.
    #[error("the token is malformed")]
    Malformed,
    /// Signed by no key this service holds, or altered.
    #[error("the token's signature does not verify")]
    Forged,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
}

/// Signs and verifies tokens. Cheap to clone.
#[derive(Clone)]
pub struct Signer {
    keys: std::sync::Arc<Vec<(String, HmacSha256)>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Signer").field("keys", &ids).finish()
    }
}

impl Signer {
    /// A signer over configured keys; the first signs. `None` without keys.
    pub fn new(keys: &[SigningKey]) -> Option<Signer> {
        let keys: Vec<(String, HmacSha256)> = keys
            .iter()
            .map(|k| {
                let mac = HmacSha256::new_from_slice(k.secret.expose().as_bytes())
                    .expect("HMAC takes a key of any length");
                (k.id.clone(), mac)
            })
            .collect();
        (!keys.is_empty()).then(|| Signer {
            keys: std::sync::Arc::new(keys),
        })
    }

    /// The token for `claims`, signed with the first key.
    pub fn sign(&self, claims: &Claims) -> String {
        let (id, mac) = &self.keys[0];
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signed = format!("{id}.{body}");
        let mut mac = mac.clone();
        mac.update(signed.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The claims of a token signed by any configured key, if it has not
    /// expired at `now_secs`.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(id), Some(body), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        // Past its shape, anything that does not verify is forged.
        let tag = B64.decode(tag).map_err(|_| TokenError::Forged)?;
        let (_, mac) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or(TokenError::Forged)?;
        let mut mac = mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&tag).map_err(|_| TokenError::Forged)?;
        let claims: Claims = B64
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.expires_at < now_secs {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn key(id: &str, fill: char) -> SigningKey {
        SigningKey {
            id: id.into(),
            secret: Secret::new(fill.to_string().repeat(32)),
        }
    }

    fn claims() -> Claims {
        Claims {
            decision: "d1".into(),
            kind: AdEventKind::Click,
            campaign_id: "c".into(),
            user_id: "u".into(),
            slot: "top".into(),
            viewer: None,
            landing: Some("https://shop.example/".into()),
            expires_at: 100,
        }
    }

    #[test]
    fn a_token_verifies_on_any_instance_with_the_key_until_it_expires() {
        let a = Signer::new(&[key("k1", 'a')]).unwrap();
        let b = Signer::new(&[key("k1", 'a')]).unwrap();
        let t = a.sign(&claims());
        assert_eq!(b.verify(&t, 100).unwrap(), claims());
        assert_eq!(b.verify(&t, 101), Err(TokenError::Expired));
        assert_eq!(b.verify(&t, 100).unwrap().event_id(), "clk:d1");
    }

    #[test]
    fn forged_altered_and_malformed_tokens_are_refused() {
        let a = Signer::new(&[key("k1", 'a')]).unwrap();
        let t = a.sign(&claims());
        let other = Signer::new(&[key("k1", 'b')]).unwrap();
        assert_eq!(other.verify(&t, 0), Err(TokenError::Forged));
        let unknown = Signer::new(&[key("k2", 'a')]).unwrap();
        assert_eq!(unknown.verify(&t, 0), Err(TokenError::Forged));
        // Another campaign's claims under the original signature.
        let mut c = claims();
        c.campaign_id = "other".into();
        let swapped = a.sign(&c);
        let (head, _) = t.rsplit_once('.').unwrap();
        let (_, forged_tag) = swapped.rsplit_once('.').unwrap();
        assert_eq!(
            a.verify(&format!("{head}.{forged_tag}"), 0),
            Err(TokenError::Forged)
        );
        for bad in ["", "a.b", "a.b.c.d", "k1.!!.??"] {
            assert!(a.verify(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rotated_in_key_verifies_old_tokens_while_the_new_one_signs() {
        let old = Signer::new(&[key("k1", 'a')]).unwrap();
        let t_old = old.sign(&claims());
        let rotated = Signer::new(&[key("k2", 'b'), key("k1", 'a')]).unwrap();
        assert!(rotated.verify(&t_old, 0).is_ok());
        let t_new = rotated.sign(&claims());
        assert!(t_new.starts_with("k2."));
        assert_eq!(old.verify(&t_new, 0), Err(TokenError::Forged));
    }
}
