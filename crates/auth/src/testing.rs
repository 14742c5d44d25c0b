//! Test helpers: a fixed HS256 secret, tokens made with it, and tokens every service must
//! refuse.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::token::Claims;
use crate::{AuthSettings, Role, Scope};

/// The secret test services are configured with.
pub const SECRET: &str = "threesigma-tests-only-0123456789abcdef";

/// `[auth]` with [`SECRET`].
pub fn settings() -> AuthSettings {
    AuthSettings {
        secret: SECRET.into(),
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

fn claims(adjust: impl FnOnce(&mut Claims)) -> Claims {
    let now = Utc::now().timestamp();
    let mut claims = Claims {
        sub: "mallory".to_owned(),
        scope: "ingest read admin".to_owned(),
        role: Some("admin".to_owned()),
        iss: "threesigma".to_owned(),
        aud: "threesigma".to_owned(),
        iat: now,
        nbf: None,
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

/// A correctly signed token for a viewer that expired an hour ago.
pub fn expired_token(subject: &str) -> String {
    let claims = claims(|c| {
        c.sub = subject.to_owned();
        c.scope = "read".to_owned();
        c.role = Some("viewer".to_owned());
        c.exp = Utc::now().timestamp() - 3600;
    });
    sign(
        Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
}

/// `(what is wrong, token)` pairs; each must get a 401.
#[allow(clippy::expect_used)]
pub fn forged_tokens() -> Vec<(&'static str, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
        (
            "not valid before an hour from now",
            hs(&claims(|c| c.nbf = Some(Utc::now().timestamp() + 3600))),
        ),
    ]
}
