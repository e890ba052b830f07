//! Fields whose JSON type differs between the 2025 documents and the live service.
//!
//! The documents send statuses, types and times as integers; the live service (the vendor's
//! SDKs decode `/task/get` into Go `string` fields) sends them as strings. [`Code`] and
//! [`Stamp`] read either: numeric strings are parsed, anything else is kept as the word the
//! service sent, shown as it is, and never a reason to fail a whole answer.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One scalar as the service sent it. Read with a visitor rather than `#[serde(untagged)]`:
/// an untagged enum buffers every value into serde's generic `Content` tree and tries each
/// variant in turn, which was most of the cost of reading a `/task/files` page.
enum Raw {
    Int(i64),
    Big(u64),
    Float(f64),
    Text(String),
    Bool(bool),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Option<Raw>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string, a boolean or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Raw::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(i64::try_from(v).map_or(Raw::Big(v), Raw::Int)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Raw::Float(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Raw::Bool(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Raw::Text(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Raw::Text(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Raw>, D::Error> {
    d.deserialize_any(RawVisitor)
}

/// A status or type code: a number, or a word the service used instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    Num(i64),
    Word(String),
}

impl Default for Code {
    fn default() -> Self {
        Code::Num(0)
    }
}

impl From<i64> for Code {
    fn from(n: i64) -> Self {
        Code::Num(n)
    }
}

impl Code {
    /// The number, when the service sent one (or a string of digits).
    pub fn num(&self) -> Option<i64> {
        match self {
            Code::Num(n) => Some(*n),
            Code::Word(_) => None,
        }
    }

    /// The number, or what `words` makes of the word (case-insensitive), or `None`.
    pub fn resolve(&self, words: fn(&str) -> Option<i64>) -> Option<i64> {
        match self {
            Code::Num(n) => Some(*n),
            Code::Word(w) => words(&w.trim().to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Num(n) => write!(f, "{n}"),
            Code::Word(w) => f.write_str(w),
        }
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Code::Num(n) => s.serialize_i64(*n),
            Code::Word(w) => s.serialize_str(w),
        }
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match raw(d)? {
            None => Code::default(),
            Some(Raw::Int(n)) => Code::Num(n),
            Some(Raw::Big(n)) => Code::Word(n.to_string()),
            Some(Raw::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Code::Num(f as i64),
            Some(Raw::Float(f)) => Code::Word(f.to_string()),
            Some(Raw::Bool(b)) => Code::Num(b as i64),
            Some(Raw::Text(t)) => match t.trim().parse::<i64>() {
                Ok(n) => Code::Num(n),
                Err(_) if t.trim().is_empty() => Code::default(),
                Err(_) => Code::Word(t),
            },
        })
    }
}

/// A time: Unix seconds (load API), or text such as RFC 3339 (export API, live service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stamp {
    Unix(i64),
    Text(String),
}

impl Default for Stamp {
    fn default() -> Self {
        Stamp::Unix(0)
    }
}

impl From<i64> for Stamp {
    fn from(n: i64) -> Self {
        Stamp::Unix(n)
    }
}

impl Stamp {
    pub fn unix(&self) -> Option<i64> {
        match self {
            Stamp::Unix(n) => Some(*n),
            Stamp::Text(_) => None,
        }
    }
    pub fn is_unset(&self) -> bool {
        matches!(self, Stamp::Unix(0)) || matches!(self, Stamp::Text(t) if t.is_empty())
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Stamp::Unix(n) => s.serialize_i64(*n),
            Stamp::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match raw(d)? {
            None | Some(Raw::Bool(_)) => Stamp::default(),
            Some(Raw::Int(n)) => Stamp::Unix(n),
            Some(Raw::Big(n)) => Stamp::Text(n.to_string()),
            Some(Raw::Float(f)) => Stamp::Unix(f as i64),
            Some(Raw::Text(t)) => match t.trim().parse::<i64>() {
                Ok(n) => Stamp::Unix(n),
                Err(_) => Stamp::Text(t),
            },
        })
    }
}

/// A count or size the service may send as a number or a numeric string.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(match raw(d)? {
        None | Some(Raw::Bool(_)) => 0,
        Some(Raw::Int(n)) => n.max(0) as u64,
        Some(Raw::Big(n)) => n,
        Some(Raw::Float(f)) => f.max(0.0) as u64,
        Some(Raw::Text(t)) => t.trim().parse().unwrap_or(0),
    })
}

/// Text the service may send as a string, a number, or `null`.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match raw(d)? {
        None => String::new(),
        Some(Raw::Int(n)) => n.to_string(),
        Some(Raw::Big(n)) => n.to_string(),
        Some(Raw::Float(f)) => f.to_string(),
        Some(Raw::Bool(b)) => b.to_string(),
        Some(Raw::Text(t)) => t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_stamps_read_every_shape() {
        let c: Vec<Code> = serde_json::from_str(r#"[4, "4", " 5 ", "running", null, ""]"#).unwrap();
        assert_eq!(
            c,
            vec![
                Code::Num(4),
                Code::Num(4),
                Code::Num(5),
                Code::Word("running".into()),
                Code::Num(0),
                Code::Num(0)
            ]
        );
        assert_eq!(c[3].to_string(), "running");
        let s: Vec<Stamp> =
            serde_json::from_str(r#"[1739331516, "1739331516", "2025-02-12T03:38:36Z", null]"#)
                .unwrap();
        assert_eq!(s[0], Stamp::Unix(1_739_331_516));
        assert_eq!(s[1], Stamp::Unix(1_739_331_516));
        assert_eq!(s[2], Stamp::Text("2025-02-12T03:38:36Z".into()));
        assert!(s[3].is_unset());
    }
}
