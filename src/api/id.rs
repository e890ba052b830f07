//! MOI identifiers.
//!
//! Task, file, volume and connector ids are 64-bit integers larger than 2^53, so a JSON
//! number passed through an `f64` would lose digits. The service sends them as strings in
//! most places and as bare numbers in some (`related_task_ids`, `source_connector_id`).
//! [`Id`] accepts both forms exactly and always writes a string, which is what the vendor's
//! own examples send.

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
}
