//! Serde helpers for JSON that is what the API documents: serde's derived
//! structs also accept a JSON array (fields by position), which the OpenAPI
//! documents do not allow. Fields that hold an object use these.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `T` from a JSON object only.
pub fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let v = Value::deserialize(d)?;
    if !v.is_object() {
        return Err(D::Error::custom("expected a JSON object"));
    }
    serde_json::from_value(v).map_err(D::Error::custom)
}

/// `Option<T>` from `null` or a JSON object only.
pub fn optional_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        _ => Err(D::Error::custom("expected a JSON object or null")),
    }
}

/// For a field that may be absent, `null` or an object: absent is `None`
/// (with `#[serde(default)]`), present is `Some(None)` or `Some(Some(..))`.
pub fn present_optional_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    optional_object(d).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        #[allow(dead_code, reason = "only deserialized")]
        a: Option<i64>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Outer {
        #[serde(deserialize_with = "super::object")]
        #[allow(dead_code, reason = "only deserialized")]
        inner: Inner,
    }

    #[test]
    fn an_array_is_not_an_object() {
        assert!(serde_json::from_str::<Outer>(r#"{"inner": {"a": 1}}"#).is_ok());
        assert!(serde_json::from_str::<Outer>(r#"{"inner": [1]}"#).is_err());
    }
}
