//! The `[auth]` settings: the algorithm, the HS256 secret or the key pair, the claims every
//! token must carry, and turning them into a [`TokenVerifier`] and a [`TokenSigner`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use runtime::Secret;
use runtime::settings::{SettingsError, duration};
use serde::{Deserialize, Serialize};

use crate::token::{TokenSigner, TokenVerifier};

/// Signature algorithm of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
    RS256,
}

impl JwtAlgorithm {
    pub(crate) fn jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::RS256 => Algorithm::RS256,
        }
    }
}

/// The `[auth]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// `HS256` (shared secret), `EdDSA` or `RS256` (key pair).
    pub algorithm: JwtAlgorithm,
    /// HS256 secret, at least 32 bytes. Usually from `JWT_SECRET` or `JWT_SECRET_FILE`.
    pub secret: Secret,
    /// EdDSA/RS256: PEM file of the public key (verifies tokens).
    pub public_key_file: String,
    /// EdDSA/RS256: PEM file of the private key (signs tokens; only where tokens are made).
    pub private_key_file: String,
    /// `iss` of tokens made and accepted.
    pub issuer: String,
    /// `aud` of tokens made and accepted.
    pub audience: String,
    /// Lifetime of login tokens (`POST /api/v1/auth/login`).
    #[serde(with = "duration")]
    pub session_ttl: Duration,
    /// Lifetime of the browser console's session (its cookie and the token in it): short,
    /// since a browser is more exposed than a script's environment; the console asks to sign
    /// in again when it ends.
    #[serde(with = "duration")]
    pub console_session_ttl: Duration,
    /// How often revoked token ids are read from the database.
    #[serde(with = "duration")]
    pub revocation_refresh: Duration,
    /// Clock skew tolerated on `exp`.
    #[serde(with = "duration")]
    pub leeway: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            algorithm: JwtAlgorithm::HS256,
            secret: Secret::default(),
            public_key_file: String::new(),
            private_key_file: String::new(),
            issuer: "threesigma".to_owned(),
            audience: "threesigma".to_owned(),
            session_ttl: Duration::from_secs(12 * 3600),
            console_session_ttl: Duration::from_secs(3600),
            revocation_refresh: Duration::from_secs(5),
            leeway: Duration::from_secs(30),
        }
    }
}

/// Smallest HS256 secret accepted.
pub const MIN_SECRET_BYTES: usize = 32;

/// Fewest distinct bytes in an HS256 secret: 32 × `a` is long but guessable; a random
/// secret of 32 bytes (or its base64) has 20 or more.
pub const MIN_SECRET_DISTINCT_BYTES: usize = 10;

/// The HS256 secret from the environment: `JWT_SECRET`, or the contents of the file named by
/// `JWT_SECRET_FILE` (a mounted secret), trailing newline removed. Secrets are never flags:
/// command lines are visible to every user.
pub fn secret_from_env() -> Result<Option<String>, SettingsError> {
    if let Ok(secret) = std::env::var("JWT_SECRET") {
        return Ok(Some(secret));
    }
    match std::env::var_os("JWT_SECRET_FILE") {
        Some(path) => std::fs::read_to_string(&path)
            .map(|secret| Some(secret.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|error| {
                SettingsError::invalid(
                    "auth.secret",
                    format!("JWT_SECRET_FILE {}: {error}", Path::new(&path).display()),
                )
            }),
        None => Ok(None),
    }
}

/// The settings layer of the conventional secret variables: `auth.secret` from
/// `JWT_SECRET` or `JWT_SECRET_FILE`, when set.
pub fn secret_override() -> Result<runtime::Overrides, SettingsError> {
    Ok(runtime::Overrides::new().set("auth.secret", secret_from_env()?))
}

fn read_key(setting: &str, path: &str) -> Result<Vec<u8>, SettingsError> {
    if path.trim().is_empty() {
        return Err(SettingsError::invalid(
            setting,
            "missing: a PEM file is needed for this algorithm",
        ));
    }
    std::fs::read(path).map_err(|error| SettingsError::invalid(setting, format!("{path}: {error}")))
}

impl AuthSettings {
    fn secret_bytes(&self) -> Result<&[u8], SettingsError> {
        let secret = self.secret.expose();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SettingsError::invalid(
                "auth.secret",
                format!("JWT_SECRET is missing or shorter than {MIN_SECRET_BYTES} bytes"),
            ));
        }
        let distinct = secret
            .bytes()
            .collect::<std::collections::BTreeSet<u8>>()
            .len();
        if distinct < MIN_SECRET_DISTINCT_BYTES {
            return Err(SettingsError::invalid(
                "auth.secret",
                format!(
                    "JWT_SECRET has only {distinct} distinct characters: use a random one (e.g. `openssl rand -base64 32`)"
                ),
            ));
        }
        Ok(secret.as_bytes())
    }

    /// What services need to check tokens; refuses unusable settings with a message naming
    /// the setting.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        let invalid_public_key = |error: jsonwebtoken::errors::Error| {
            SettingsError::invalid("auth.public_key_file", error.to_string())
        };
        let key = match self.algorithm {
            JwtAlgorithm::HS256 => DecodingKey::from_secret(self.secret_bytes()?),
            JwtAlgorithm::EdDSA => {
                DecodingKey::from_ed_pem(&read_key("auth.public_key_file", &self.public_key_file)?)
                    .map_err(invalid_public_key)?
            }
            JwtAlgorithm::RS256 => {
                DecodingKey::from_rsa_pem(&read_key("auth.public_key_file", &self.public_key_file)?)
                    .map_err(invalid_public_key)?
            }
        };
        let mut validation = Validation::new(self.algorithm.jsonwebtoken());
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        Ok(TokenVerifier::new(key, validation))
    }

    /// What is needed to make tokens: `None` for a key pair without its private key (a
    /// service that only verifies).
    pub fn signer(&self) -> Result<Option<TokenSigner>, SettingsError> {
        let invalid_private_key = |error: jsonwebtoken::errors::Error| {
            SettingsError::invalid("auth.private_key_file", error.to_string())
        };
        let key = match self.algorithm {
            JwtAlgorithm::HS256 => EncodingKey::from_secret(self.secret_bytes()?),
            _ if self.private_key_file.trim().is_empty() => return Ok(None),
            JwtAlgorithm::EdDSA => EncodingKey::from_ed_pem(&read_key(
                "auth.private_key_file",
                &self.private_key_file,
            )?)
            .map_err(invalid_private_key)?,
            JwtAlgorithm::RS256 => EncodingKey::from_rsa_pem(&read_key(
                "auth.private_key_file",
                &self.private_key_file,
            )?)
            .map_err(invalid_private_key)?,
        };
        Ok(Some(TokenSigner {
            key: Arc::new(key),
            algorithm: self.algorithm.jsonwebtoken(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_by_name() {
        let error = AuthSettings::default()
            .verifier()
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("auth.secret") && error.contains("JWT_SECRET"),
            "{error}"
        );
    }

    #[test]
    fn long_but_guessable_secrets_are_refused() {
        for guessable in ["a".repeat(32), "ab".repeat(20)] {
            let settings = AuthSettings {
                secret: guessable.clone().into(),
                ..AuthSettings::default()
            };
            let error = settings.verifier().err().unwrap().to_string();
            assert!(
                error.contains("distinct characters"),
                "{guessable}: {error}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let settings = AuthSettings {
            secret: Secret::new("0123456789abcdef0123456789abcdef-s3cr3t"),
            ..AuthSettings::default()
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }
}
