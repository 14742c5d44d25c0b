//! argon2id hashing of passwords, with the crate's recommended parameters (OWASP: 19 MiB,
//! 2 passes).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords need at least {MIN_LENGTH} characters")]
    TooShort,
    #[error(
        "that password is too easy to guess (too few different characters, or a well-known one); choose another"
    )]
    TooWeak,
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

/// Fewest distinct characters in a password (`aaaaaaaaaaaa`, twelve spaces and
/// `abababababab` are long enough and guessed first).
pub const MIN_DISTINCT: usize = 5;

/// Well-known passwords that pass the length and variety rules; lower case, compared
/// case-insensitively.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "iloveyou1234",
    "changeme1234",
    "letmein12345",
    "administrator",
    "administrator1",
    "welcome12345",
    "correcthorsebatterystaple",
    "correct horse battery staple",
];

/// The PHC string of an argon2id hash of `password`.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let distinct = password
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<std::collections::BTreeSet<char>>()
        .len();
    let lower = password.trim().to_lowercase();
    if distinct < MIN_DISTINCT || COMMON.contains(&lower.as_str()) {
        return Err(PasswordError::TooWeak);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// Whether `password` matches the stored `hash`.
pub fn verify(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash nobody's password matches, checked when the email is unknown so that a login for
/// an unknown email takes as long as one with a wrong password. Services that log users in
/// call it once at start, so the first unknown-email login is not the one that builds it
/// (that one was ~20 ms slower: a timing tell).
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("wrong horse battery", &hash));
        assert_eq!(super::hash("short"), Err(PasswordError::TooShort));
    }

    #[test]
    fn guessable_passwords_are_refused() {
        for weak in [
            "            ",
            "aaaaaaaaaaaa",
            "abababababab",
            "a b a b a b a b a b a b",
            "Password1234",
            "123456789012",
        ] {
            assert_eq!(hash(weak), Err(PasswordError::TooWeak), "{weak:?}");
        }
        assert!(hash("tidy-otter-41-lamp").is_ok());
    }
}
