//! MOI identifiers.
//!
//! Task, file, volume and connector ids are 64-bit integers larger than 2^53, so a JSON
//! number passed through an `f64` would lose digits. The service sends them as strings in
//! most places and as bare numbers in some (`related_task_ids`, `source_connector_id`).
//! [`Id`] accepts both forms exactly and always writes a string, which is what the vendor's
//! own examples send.
//!
//! Volume ids are different: the live service hands out opaque text
//! (`019b39fc-f4ee-7915-b701-66ae6a48d9fc`; the Go SDK's `type VolumeID string`) while the
//! 2025 documents show integers. [`VolumeId`] keeps whatever the user or the service gave,
//! as text, and never interprets it.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Id(pub u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a MOI id: ids are whole numbers such as 1889578498228068352")]
pub struct BadId(pub String);

impl FromStr for Id {
    type Err = BadId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .map(Id)
            .map_err(|_| BadId(s.to_string()))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id as a JSON string of digits or a JSON integer")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
        Ok(Id(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
        u64::try_from(v)
            .map(Id)
            .map_err(|_| E::custom(format!("negative id {v}")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
        // A float here means some hop already rounded the id; refuse rather than guess.
        Err(E::custom(format!(
            "id {v} arrived as a floating-point number and may have lost digits"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

/// A volume id: opaque text, exactly as given. Numbers that arrive as JSON numbers are kept
/// as their decimal text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct VolumeId(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "'{0}' is not a volume id: give the id as MOI shows it, e.g. 1889578498228068352 or \
     019b39fc-f4ee-7915-b701-66ae6a48d9fc (no spaces or control characters, at most 128 bytes)"
)]
pub struct BadVolumeId(pub String);

impl VolumeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VolumeId {
    type Err = BadVolumeId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/');
        if ok {
            Ok(VolumeId(t.to_string()))
        } else {
            Err(BadVolumeId(s.to_string()))
        }
    }
}

impl From<Id> for VolumeId {
    fn from(id: Id) -> Self {
        VolumeId(id.to_string())
    }
}

impl Serialize for VolumeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VolumeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Neg(i64),
            Text(String),
        }
        Ok(VolumeId(match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Neg(n) => n.to_string(),
            Raw::Text(t) => t,
        }))
    }
}

/// An id the documents write as a JSON number (`"connector_id": 1`, `"source_connector_id":
/// 100004`): written as a number, read from a number or a string.
pub mod as_number {
    use super::Id;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &Id, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(id.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        Id::deserialize(d)
    }
}

/// An id field that the service may leave empty (`""`), omit, or send as `null`.
pub mod optional_serde {
    use super::Id;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(id: &Option<Id>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => id.serialize(s),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Id(Id),
            Empty(String),
        }
        match Option::<Raw>::deserialize(d)? {
            Some(Raw::Id(id)) => Ok(Some(id)),
            Some(Raw::Empty(s)) if s.trim().is_empty() => Ok(None),
            Some(Raw::Empty(s)) => Err(serde::de::Error::custom(format!("bad id '{s}'"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_ids_survive_both_forms() {
        let from_str: Id = serde_json::from_str("\"1889613340219121664\"").unwrap();
        let from_num: Id = serde_json::from_str("1889613340219121665").unwrap();
        assert_eq!(from_str.0, 1_889_613_340_219_121_664);
        assert_eq!(from_num.0, 1_889_613_340_219_121_665);
        assert_eq!(
            serde_json::to_string(&from_num).unwrap(),
            "\"1889613340219121665\""
        );
        assert!(serde_json::from_str::<Id>("1.8896133402191217e18").is_err());
        assert!(serde_json::from_str::<Id>("\"12a\"").is_err());
    }

    #[test]
    fn volume_ids_are_opaque_text() {
        let uuid: VolumeId = "019b39fc-f4ee-7915-b701-66ae6a48d9fc".parse().unwrap();
        assert_eq!(uuid.as_str(), "019b39fc-f4ee-7915-b701-66ae6a48d9fc");
        let num: VolumeId = serde_json::from_str("1889578498228068352").unwrap();
        assert_eq!(num.as_str(), "1889578498228068352");
        let text: VolumeId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"abc\"");
        for bad in ["", " ", "a b", "a/b", "x\ny"] {
            assert!(bad.parse::<VolumeId>().is_err(), "{bad:?}");
        }
    }
}
