//! Service names: what a log belongs to and what incidents are keyed by.

use serde::{Deserialize, Serialize};

/// Longest accepted service name, in bytes.
pub const MAX_SERVICE_NAME_BYTES: usize = 128;

/// A validated service name: 1–128 bytes of ASCII letters, digits and `-_.:/@`.
///
/// The character set is what Kubernetes, systemd and OpenTelemetry resource names use, and
/// it keeps names safe to print in URLs, metrics labels and terminal output unescaped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(String);

/// Why a service name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceNameError {
    #[error("service name is empty")]
    Empty,
    #[error("service name is longer than {MAX_SERVICE_NAME_BYTES} bytes")]
    TooLong,
    #[error("service name {0:?} contains a character outside ASCII letters, digits and -_.:/@")]
    BadCharacter(String),
}

impl ServiceName {
    /// Parses a service name; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<ServiceName, ServiceNameError> {
        let name = text.trim();
        if name.is_empty() {
            return Err(ServiceNameError::Empty);
        }
        if name.len() > MAX_SERVICE_NAME_BYTES {
            return Err(ServiceNameError::TooLong);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b))
        {
            return Err(ServiceNameError::BadCharacter(name.to_owned()));
        }
        Ok(ServiceName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl TryFrom<String> for ServiceName {
    type Error = ServiceNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ServiceName::parse(&text)
    }
}

impl From<ServiceName> for String {
    fn from(name: ServiceName) -> String {
        name.0
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typical_names_are_accepted() {
        for name in [
            "checkout",
            "checkout-nd",
            "api.gateway",
            "prod/payments",
            "svc_1:v2",
            "a@b",
        ] {
            assert_eq!(ServiceName::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(ServiceName::parse("  web ").unwrap().as_str(), "web");
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(ServiceName::parse("   "), Err(ServiceNameError::Empty));
        assert_eq!(
            ServiceName::parse(&"a".repeat(129)),
            Err(ServiceNameError::TooLong)
        );
        assert!(matches!(
            ServiceName::parse("my service"),
            Err(ServiceNameError::BadCharacter(_))
        ));
        assert!(matches!(
            ServiceName::parse("café"),
            Err(ServiceNameError::BadCharacter(_))
        ));
    }

    proptest! {
        #[test]
        fn accepted_names_are_stable_under_reparsing(text in "\\PC{0,140}") {
            if let Ok(name) = ServiceName::parse(&text) {
                prop_assert!(!name.as_str().is_empty());
                prop_assert!(name.as_str().len() <= MAX_SERVICE_NAME_BYTES);
                prop_assert_eq!(ServiceName::parse(name.as_str()), Ok(name.clone()));
            }
        }

        #[test]
        fn names_from_the_allowed_alphabet_are_accepted(text in "[A-Za-z0-9_.:/@-]{1,128}") {
            prop_assert!(ServiceName::parse(&text).is_ok());
        }
    }
}
