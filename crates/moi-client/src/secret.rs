//! Secrets (API key, password, tokens) as a type that cannot be printed by accident.
//!
//! `Debug` and `Display` show `***`; the only way to the text is [`Secret::expose`], which
//! is called where a header is built and nowhere else. [`Redactor`] scrubs known secrets
//! out of text that came from elsewhere (a server's error message may echo a header).

use std::fmt;
use std::sync::{Arc, RwLock};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The secrets one client knows, to be scrubbed from any text it passes on.
#[derive(Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    pub fn add(&self, secret: &Secret) {
        // Very short secrets would turn ordinary words into `***`; nobody uses a 3-letter key.
        if secret.0.len() >= 4
            && let Ok(mut list) = self.0.write()
            && !list.contains(&secret.0)
        {
            list.push(secret.0.clone());
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(list) = self.0.read() {
            for s in list.iter() {
                if out.contains(s.as_str()) {
                    out = out.replace(s.as_str(), "***");
                }
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(***)")
    }
}

/// The keys whose values are secrets in the service's answers and in request bodies
/// (connector configs): shown as `***` unless the user asks for them.
pub const SECRET_KEYS: &[&str] = &[
    "access_key_secret",
    "secret_access_key",
    "password",
    "api_key",
    "session_token",
];

/// Replaces every secret value in `v` (at any depth) with `***`; returns the values it hid,
/// so that they can also be scrubbed from error messages.
pub fn mask_secrets(v: &mut serde_json::Value) -> Vec<String> {
    let mut hidden = Vec::new();
    mask_into(v, &mut hidden);
    hidden
}

fn mask_into(v: &mut serde_json::Value, hidden: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) {
                    if let Some(s) = val.as_str().filter(|s| !s.is_empty()) {
                        hidden.push(s.to_string());
                    }
                    if !val.is_null() {
                        *val = serde_json::Value::String("***".into());
                    }
                } else {
                    mask_into(val, hidden);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| mask_into(i, hidden)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let r = Redactor::default();
        r.add(&s);
        assert_eq!(r.scrub("bad key sk-very-secret!"), "bad key ***!");
    }

    #[test]
    fn connector_secrets_are_masked_at_any_depth() {
        let mut v = serde_json::json!({"connectors": [{"oss": {"access_key_id": "id",
            "access_key_secret": "Admin123"}, "mo": {"password": "pw"}}]});
        let mut hidden = mask_secrets(&mut v);
        hidden.sort();
        assert_eq!(hidden, vec!["Admin123".to_string(), "pw".to_string()]);
        assert_eq!(v["connectors"][0]["oss"]["access_key_secret"], "***");
        assert_eq!(v["connectors"][0]["oss"]["access_key_id"], "id");
    }
}
