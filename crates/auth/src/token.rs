//! Tokens: making them ([`TokenSigner`]), checking them ([`TokenVerifier`]) and who they
//! belong to ([`Principal`]).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::roles::{Role, Scope};

/// The claims of a threesigma token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    /// Space-separated scopes.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    /// Not before (verified; tokens made before it was issued have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
    pub jti: String,
}

/// The longest a token may live: a year and a day. Long enough for a shipper's token
/// rotated yearly; a leaked token without an end is what this refuses.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// A token just made.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token may live at most 366 days; issue a new one to rotate")]
    TtlTooLong,
    #[error("signing a token failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Makes tokens.
#[derive(Clone)]
pub struct TokenSigner {
    pub(crate) key: Arc<EncodingKey>,
    pub(crate) algorithm: Algorithm,
    pub(crate) issuer: String,
    pub(crate) audience: String,
}

impl TokenSigner {
    /// A token for `subject` with `scopes` (and a user's `role`), valid for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        scopes: &[Scope],
        role: Option<Role>,
        ttl: Duration,
    ) -> Result<IssuedToken, TokenError> {
        if ttl > MAX_TTL {
            return Err(TokenError::TtlTooLong);
        }
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(ttl).map_err(|_| TokenError::TtlTooLong)?;
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let claims = Claims {
            sub: subject.to_owned(),
            scope: scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            role: role.map(|role| role.as_str().to_owned()),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            exp: expires_at.timestamp(),
            jti: jti.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)?;
        Ok(IssuedToken {
            token,
            jti,
            expires_at,
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub subject: String,
    pub scopes: Vec<Scope>,
    pub role: Option<Role>,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

impl Principal {
    /// Whether the token grants `scope` (admin grants everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether the caller may acknowledge and resolve incidents.
    pub fn can_operate(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
            || matches!(self.role, Some(Role::Admin | Role::Operator))
    }

    /// This caller, if the token grants `scope`.
    pub fn require(self, scope: Scope) -> Result<Principal, AuthError> {
        if self.allows(scope) {
            Ok(self)
        } else {
            Err(AuthError::Forbidden(format!(
                "token lacks the {} scope",
                scope.as_str()
            )))
        }
    }

    /// This caller, if it may acknowledge and resolve incidents.
    pub fn require_operator(self) -> Result<Principal, AuthError> {
        let principal = self.require(Scope::Read)?;
        if principal.can_operate() {
            Ok(principal)
        } else {
            Err(AuthError::Forbidden(
                "acknowledging and resolving incidents needs the operator or admin role".to_owned(),
            ))
        }
    }
}

/// Why a request was not authenticated or not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "missing token (send Authorization: Bearer <token>, basic auth with the token as password, or ApiKey <token>)"
    )]
    Missing,
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token revoked")]
    Revoked,
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    /// Whether the caller is known but not allowed (403), rather than unknown (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, AuthError::Forbidden(_))
    }
}

/// Checks tokens; shared by every worker of a service.
#[derive(Clone)]
pub struct TokenVerifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
    revoked: Arc<RwLock<HashSet<String>>>,
}

impl TokenVerifier {
    /// How long past `exp` a token is still accepted (clock skew between services).
    pub fn leeway(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.validation.leeway).unwrap_or(i64::MAX))
    }

    pub(crate) fn new(key: DecodingKey, validation: Validation) -> TokenVerifier {
        TokenVerifier {
            key: Arc::new(key),
            validation: Arc::new(validation),
            revoked: Arc::default(),
        }
    }

    /// Verifies a token and returns its bearer.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |error| match error.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => AuthError::Invalid("not a well-formed JWT".to_owned()),
                ErrorKind::InvalidAlgorithm => AuthError::Invalid(
                    "signed with an algorithm this service does not accept".to_owned(),
                ),
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".to_owned()),
                ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".to_owned()),
                ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".to_owned()),
                ErrorKind::MissingRequiredClaim(claim) => {
                    AuthError::Invalid(format!("missing claim {claim}"))
                }
                _ => AuthError::Invalid(error.to_string()),
            },
        )?;
        let claims = data.claims;
        if claims.jti.is_empty() {
            return Err(AuthError::Invalid("missing claim jti".to_owned()));
        }
        if self
            .revoked
            .read()
            .is_ok_and(|revoked| revoked.contains(&claims.jti))
        {
            return Err(AuthError::Revoked);
        }
        let scopes = claims
            .scope
            .split_whitespace()
            .filter_map(Scope::parse)
            .collect();
        Ok(Principal {
            subject: claims.sub,
            scopes,
            role: claims.role.as_deref().and_then(Role::parse),
            jti: claims.jti,
            expires_at: DateTime::<Utc>::from_timestamp(claims.exp, 0)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        })
    }

    /// Revokes one token id here now (a sign-out), before the next refresh from the
    /// database brings it to every service.
    pub fn revoke(&self, jti: &str) {
        if let Ok(mut revoked) = self.revoked.write() {
            revoked.insert(jti.to_owned());
        }
    }

    /// Replaces the set of revoked token ids.
    pub fn set_revoked(&self, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut revoked) = self.revoked.write() {
            *revoked = ids.into_iter().collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthSettings;

    #[test]
    fn issued_tokens_verify_with_their_scopes() {
        let settings = AuthSettings {
            secret: "0123456789abcdef0123456789abcdef".into(),
            ..AuthSettings::default()
        };
        let signer = settings.signer().unwrap().unwrap();
        let verifier = settings.verifier().unwrap();
        let token = signer
            .issue(
                "alice@example.com",
                &[Scope::Read],
                Some(Role::Operator),
                Duration::from_secs(60),
            )
            .unwrap();
        let principal = verifier.verify(&token.token).unwrap();
        assert_eq!(principal.subject, "alice@example.com");
        assert!(principal.allows(Scope::Read));
        assert!(!principal.allows(Scope::Ingest));
        assert!(principal.can_operate());
        assert_eq!(principal.jti, token.jti);
        verifier.set_revoked([token.jti.clone()]);
        assert_eq!(verifier.verify(&token.token), Err(AuthError::Revoked));
    }
}
