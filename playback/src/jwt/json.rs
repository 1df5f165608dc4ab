//! Strict JSON for JWT headers, claims and JWKS documents.
//!
//! `serde_json` keeps the last of two equal keys silently, so `{"alg":"HS256","alg":"none"}`
//! means different things to different parsers. Here a repeated key at any depth is an error,
//! and the top level must be an object.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value whose objects, at every depth, have no repeated key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value without repeated object keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom("repeated object key"));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Strict(Value::Object(object)))
    }
}

/// Parses `bytes` as one JSON object with no repeated key at any depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(object))) => Some(object),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_object;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"b":[1,{"c":2}],"d":-1.5}"#).is_some());
        assert!(parse_object(br#"{"a":1,"a":1}"#).is_none());
        assert!(parse_object(br#"{"a":{"b":1,"b":2}}"#).is_none());
        assert!(parse_object(br#"{"a":[{"b":1,"b":2}]}"#).is_none());
    }

    #[test]
    fn only_objects() {
        assert!(parse_object(b"[]").is_none());
        assert!(parse_object(b"\"x\"").is_none());
        assert!(parse_object(b"{} x").is_none());
        assert!(parse_object(b"").is_none());
    }
}
