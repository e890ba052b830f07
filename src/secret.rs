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
}
