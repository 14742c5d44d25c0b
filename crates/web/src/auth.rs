//! Who may do what: JWT bearer tokens, scopes and roles, revocation, passwords.
//!
//! - Tokens are JWTs signed with HS256 (a shared `JWT_SECRET` of at least 32 bytes) or with
//!   an EdDSA / RS256 key pair, so that verifying services hold only the public key. Only
//!   the configured algorithm is accepted: `alg: none`, and a token signed with another
//!   algorithm than the service's (algorithm confusion), are refused. `exp`, `iss`, `aud`,
//!   `sub` and `jti` are required and checked.
//! - Scopes (`scope` claim, space-separated): `ingest` (send logs), `read` (read incidents
//!   and logs), `admin` (everything). Login tokens also carry the user's `role`; acknowledging
//!   and resolving incidents needs the `operator` or `admin` role (or the admin scope).
//! - Revoked token ids are polled from the database every few seconds by every service.
//! - The middleware [`authenticate`] only *records* who is calling; the extractors
//!   ([`IngestAccess`], [`ReadAccess`], [`OperatorAccess`]) refuse, so rate limiting can key on
//!   the caller before anything is refused.

use std::collections::HashSet;
use std::future::{Ready, ready};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::settings::{SettingsError, duration};

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read, and acknowledge or resolve incidents.
    Operator,
    /// Read only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// The scopes of a login token for this role.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Role::Admin => &[Scope::Read, Scope::Admin],
            Role::Operator | Role::Viewer => &[Scope::Read],
        }
    }
}

/// Signature algorithm of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
    RS256,
}

impl JwtAlgorithm {
    fn jsonwebtoken(self) -> Algorithm {
        match self {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::RS256 => Algorithm::RS256,
        }
    }
}

/// The `[auth]` settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// `HS256` (shared secret), `EdDSA` or `RS256` (key pair).
    pub algorithm: JwtAlgorithm,
    /// HS256 secret, at least 32 bytes. Usually from `JWT_SECRET` or `JWT_SECRET_FILE`.
    pub secret: String,
    /// EdDSA/RS256: PEM file of the public key (verifies tokens).
    pub public_key_file: String,
    /// EdDSA/RS256: PEM file of the private key (signs tokens; only where tokens are made).
    pub private_key_file: String,
    /// `iss` of tokens made and accepted.
    pub issuer: String,
    /// `aud` of tokens made and accepted.
    pub audience: String,
    /// Lifetime of login tokens.
    #[serde(with = "duration")]
    pub session_ttl: Duration,
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
            secret: String::new(),
            public_key_file: String::new(),
            private_key_file: String::new(),
            issuer: "threesigma".to_owned(),
            audience: "threesigma".to_owned(),
            session_ttl: Duration::from_secs(12 * 3600),
            revocation_refresh: Duration::from_secs(5),
            leeway: Duration::from_secs(30),
        }
    }
}

// The secret must never be printed.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .field("public_key_file", &self.public_key_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Smallest HS256 secret accepted.
pub const MIN_SECRET_BYTES: usize = 32;

/// The HS256 secret from the environment: `JWT_SECRET`, or the contents of the file named by
/// `JWT_SECRET_FILE` (a mounted secret), trailing newline removed.
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
    fn check_secret(&self) -> Result<(), SettingsError> {
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err(SettingsError::invalid(
                "auth.secret",
                format!("JWT_SECRET is missing or shorter than {MIN_SECRET_BYTES} bytes"),
            ));
        }
        Ok(())
    }

    /// What services need to check tokens; refuses unusable settings with a message naming
    /// the setting.
    pub fn verifier(&self) -> Result<TokenVerifier, SettingsError> {
        let key = match self.algorithm {
            JwtAlgorithm::HS256 => {
                self.check_secret()?;
                DecodingKey::from_secret(self.secret.as_bytes())
            }
            JwtAlgorithm::EdDSA => {
                DecodingKey::from_ed_pem(&read_key("auth.public_key_file", &self.public_key_file)?)
                    .map_err(|error| {
                        SettingsError::invalid("auth.public_key_file", error.to_string())
                    })?
            }
            JwtAlgorithm::RS256 => {
                DecodingKey::from_rsa_pem(&read_key("auth.public_key_file", &self.public_key_file)?)
                    .map_err(|error| {
                        SettingsError::invalid("auth.public_key_file", error.to_string())
                    })?
            }
        };
        let mut validation = Validation::new(self.algorithm.jsonwebtoken());
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway.as_secs();
        Ok(TokenVerifier {
            key: Arc::new(key),
            validation: Arc::new(validation),
            revoked: Arc::default(),
        })
    }

    /// What is needed to make tokens: `None` for a key pair without its private key (a
    /// service that only verifies).
    pub fn signer(&self) -> Result<Option<TokenSigner>, SettingsError> {
        let key = match self.algorithm {
            JwtAlgorithm::HS256 => {
                self.check_secret()?;
                EncodingKey::from_secret(self.secret.as_bytes())
            }
            _ if self.private_key_file.trim().is_empty() => return Ok(None),
            JwtAlgorithm::EdDSA => EncodingKey::from_ed_pem(&read_key(
                "auth.private_key_file",
                &self.private_key_file,
            )?)
            .map_err(|error| SettingsError::invalid("auth.private_key_file", error.to_string()))?,
            JwtAlgorithm::RS256 => EncodingKey::from_rsa_pem(&read_key(
                "auth.private_key_file",
                &self.private_key_file,
            )?)
            .map_err(|error| SettingsError::invalid("auth.private_key_file", error.to_string()))?,
        };
        Ok(Some(TokenSigner {
            key: Arc::new(key),
            algorithm: self.algorithm.jsonwebtoken(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        }))
    }
}

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
    pub exp: i64,
    pub jti: String,
}

/// A token just made.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

/// Makes tokens.
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<EncodingKey>,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
}

impl TokenSigner {
    /// A token for `subject` with `scopes` (and a user's `role`), valid for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        scopes: &[Scope],
        role: Option<Role>,
        ttl: Duration,
    ) -> Result<IssuedToken, ApiError> {
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
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
            exp: expires_at.timestamp(),
            jti: jti.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|error| ApiError::Internal(format!("signing a token failed: {error}")))?;
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
}

/// Why a request was not authenticated or not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (send Authorization: Bearer <token>)")]
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

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Forbidden(_) => ApiError::Forbidden(error.to_string()),
            other => ApiError::Unauthorized(other.to_string()),
        }
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

    /// Replaces the set of revoked token ids.
    pub fn set_revoked(&self, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut revoked) = self.revoked.write() {
            *revoked = ids.into_iter().collect();
        }
    }

    /// Polls revoked token ids from the database every `every`, until `shutdown`. Failures
    /// keep the last known list.
    pub fn refresh_revocations(
        &self,
        pool: store::DbPool,
        every: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let verifier = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let ids = async {
                    let mut conn = store::pool::connection(&pool).await?;
                    store::users::revoked_token_ids(&mut conn).await
                }
                .await;
                match ids {
                    Ok(ids) => verifier.set_revoked(ids),
                    Err(error) => {
                        tracing::warn!(%error, "Reading revoked tokens failed; keeping the last list.")
                    }
                }
            }
        })
    }
}

/// The outcome of authentication, stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct Authentication(pub Result<Principal, AuthError>);

fn bearer(request: &ServiceRequest) -> Result<&str, AuthError> {
    let Some(header) = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
    else {
        return Err(AuthError::Missing);
    };
    let value = header
        .to_str()
        .map_err(|_| AuthError::Malformed("not valid text".to_owned()))?;
    let (kind, token) = value
        .split_once(' ')
        .ok_or_else(|| AuthError::Malformed("expected Bearer <token>".to_owned()))?;
    if !kind.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed("expected Bearer <token>".to_owned()));
    }
    Ok(token.trim())
}

/// Middleware: verifies the bearer token (needs a [`TokenVerifier`] as app data) and records
/// the outcome for the rate limiter and the access extractors.
pub async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let outcome = match request.app_data::<actix_web::web::Data<TokenVerifier>>() {
        Some(verifier) => bearer(&request).and_then(|token| verifier.verify(token)),
        None => Err(AuthError::Invalid(
            "this service has no token verifier".to_owned(),
        )),
    };
    request.extensions_mut().insert(Authentication(outcome));
    next.call(request).await
}

fn principal(request: &HttpRequest) -> Result<Principal, ApiError> {
    match request.extensions().get::<Authentication>() {
        Some(Authentication(outcome)) => outcome.clone().map_err(ApiError::from),
        None => Err(AuthError::Missing.into()),
    }
}

fn require(request: &HttpRequest, scope: Scope) -> Result<Principal, ApiError> {
    let principal = principal(request)?;
    if principal.allows(scope) {
        Ok(principal)
    } else {
        Err(AuthError::Forbidden(format!("token lacks the {} scope", scope.as_str())).into())
    }
}

/// Defines an extractor that demands a scope.
macro_rules! access {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Ready<Result<Self, ApiError>>;

            fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
                let check: fn(&HttpRequest) -> Result<Principal, ApiError> = $check;
                ready(check(request).map($name))
            }
        }
    };
}

access!(
    /// A caller allowed to send logs (`ingest` scope).
    IngestAccess,
    |request| require(request, Scope::Ingest)
);
access!(
    /// A caller allowed to read (`read` scope).
    ReadAccess,
    |request| require(request, Scope::Read)
);
access!(
    /// A caller allowed to acknowledge and resolve incidents (`read` scope and the operator
    /// or admin role, or the admin scope).
    OperatorAccess,
    |request| {
        let principal = require(request, Scope::Read)?;
        if principal.can_operate() {
            Ok(principal)
        } else {
            Err(AuthError::Forbidden("acknowledging and resolving incidents needs the operator or admin role".to_owned()).into())
        }
    }
);

/// argon2id hashing of passwords, with the crate's recommended parameters (OWASP: 19 MiB,
/// 2 passes).
pub mod password {
    use argon2::{Argon2, PasswordHasher, PasswordVerifier};

    /// Shortest password accepted.
    pub const MIN_LENGTH: usize = 12;

    /// The PHC string of an argon2id hash of `password`.
    pub fn hash(password: &str) -> Result<String, String> {
        if password.chars().count() < MIN_LENGTH {
            return Err(format!("passwords need at least {MIN_LENGTH} characters"));
        }
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| error.to_string())
    }

    /// Whether `password` matches the stored `hash`.
    pub fn verify(password: &str, hash: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
    }

    /// A hash nobody's password matches, checked when the email is unknown so that a login
    /// for an unknown email takes as long as one with a wrong password.
    pub fn decoy() -> &'static str {
        static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        DECOY.get_or_init(|| hash(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            secret: "0123456789abcdef0123456789abcdef".to_owned(),
            ..AuthSettings::default()
        }
    }

    #[test]
    fn issued_tokens_verify_with_their_scopes() {
        let settings = settings();
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
    fn passwords_hash_and_verify() {
        let hash = password::hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password::verify("correct horse battery", &hash));
        assert!(!password::verify("wrong horse battery", &hash));
        assert!(password::hash("short").is_err());
    }
}

/// Test helpers: a fixed HS256 secret, and tokens made with it.
#[cfg(feature = "testing")]
pub mod testing {
    use super::*;

    /// The secret test services are configured with.
    pub const SECRET: &str = "threesigma-tests-only-0123456789abcdef";

    /// `[auth]` with [`SECRET`].
    pub fn settings() -> AuthSettings {
        AuthSettings {
            secret: SECRET.to_owned(),
            ..AuthSettings::default()
        }
    }

    /// A token for `subject` with `scopes` and `role`, valid for an hour.
    pub fn token(subject: &str, scopes: &[Scope], role: Option<Role>) -> String {
        #[allow(clippy::expect_used)]
        settings()
            .signer()
            .ok()
            .flatten()
            .expect("the test secret is valid")
            .issue(subject, scopes, role, Duration::from_secs(3600))
            .expect("signing a test token")
            .token
    }
}

/// Tokens every service must refuse, one per way a token can be wrong.
#[cfg(feature = "testing")]
pub mod forged {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::testing::SECRET;
    use super::*;

    fn claims(adjust: impl FnOnce(&mut Claims)) -> Claims {
        let now = Utc::now().timestamp();
        let mut claims = Claims {
            sub: "mallory".to_owned(),
            scope: "ingest read admin".to_owned(),
            role: Some("admin".to_owned()),
            iss: "threesigma".to_owned(),
            aud: "threesigma".to_owned(),
            iat: now,
            exp: now + 3600,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        adjust(&mut claims);
        claims
    }

    #[allow(clippy::expect_used)]
    fn sign(header: Header, claims: &Claims, key: &EncodingKey) -> String {
        jsonwebtoken::encode(&header, claims, key).expect("signing")
    }

    /// `(what is wrong, token)` pairs; each must get a 401.
    #[allow(clippy::expect_used)]
    pub fn tokens() -> Vec<(&'static str, String)> {
        let hs = |claims: &Claims| {
            sign(
                Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
        };
        let ed_key = EncodingKey::from_ed_pem(include_bytes!(
            "../../../tests/fixtures/keys/ed25519-private.pem"
        ))
        .expect("fixture key");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(|_| {})).expect("json"));
        vec![
            ("malformed", "not-a-jwt".to_owned()),
            (
                "expired",
                hs(&claims(|c| c.exp = Utc::now().timestamp() - 3600)),
            ),
            (
                "wrong signature",
                sign(
                    Header::new(Algorithm::HS256),
                    &claims(|_| {}),
                    &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
                ),
            ),
            (
                "alg none",
                format!(
                    "{}.{payload}.",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
                ),
            ),
            (
                "wrong algorithm",
                sign(Header::new(Algorithm::EdDSA), &claims(|_| {}), &ed_key),
            ),
            (
                "wrong audience",
                hs(&claims(|c| c.aud = "someone-else".to_owned())),
            ),
            (
                "wrong issuer",
                hs(&claims(|c| c.iss = "someone-else".to_owned())),
            ),
            ("no jti", hs(&claims(|c| c.jti = String::new()))),
        ]
    }
}
