//! Settings that must never be printed: database URLs (they may hold a password), the JWT
//! secret, webhook credentials.
//!
//! [`Secret`] wraps [`secrecy::SecretString`] (zeroed on drop) so that settings structs can
//! derive `Debug` and `Serialize` without a hand-written redaction that the next field
//! forgets: `Debug` shows `Secret(<redacted>)` and serializing writes `<redacted>`. Only
//! [`Secret::expose`] reads the value, at the one place that needs it.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug` and serialization show instead of a secret's value.
pub const REDACTED: &str = "<redacted>";

/// A secret setting. Empty means "not set".
pub struct Secret(SecretString);

impl Clone for Secret {
    fn clone(&self) -> Secret {
        Secret::new(self.expose())
    }
}

impl Default for Secret {
    fn default() -> Secret {
        Secret::new("")
    }
}

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The value, for the one place that uses it (connecting, signing, an HTTP header).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether no value is set (empty or only whitespace).
    pub fn is_empty(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.expose().is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            write!(f, "Secret({REDACTED})")
        }
    }
}

/// Serialized settings (the defaults layer, `--help`) never carry a value: an unset secret
/// is `""`, a set one `<redacted>`.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.expose().is_empty() {
            serializer.serialize_str("")
        } else {
            serializer.serialize_str(REDACTED)
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_serialize_never_show_the_value() {
        let secret = Secret::new("postgres://app:hunter2@db/threesigma");
        let debug = format!("{secret:?} {secret:#?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let json = serde_json::to_string(&secret).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert_eq!(secret.expose(), "postgres://app:hunter2@db/threesigma");
        assert_eq!(serde_json::to_string(&Secret::default()).unwrap(), "\"\"");
        let parsed: Secret = serde_json::from_str("\"s3cret\"").unwrap();
        assert_eq!(parsed.expose(), "s3cret");
    }
}
