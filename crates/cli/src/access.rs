//! `threesigma user ...` and `threesigma token ...`: operators and shipper tokens.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use auth::{AuthSettings, Role, Scope, password};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use runtime::Layered;
use runtime::settings;
use serde::{Deserialize, Serialize};

/// The settings the token commands read: only `[auth]`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct TokenSettings {
    auth: AuthSettings,
}

impl Layered for TokenSettings {}

/// `[auth]` from `--config`/`THREESIGMA_CONFIG`, the environment and `JWT_SECRET`.
pub fn auth_settings(config: Option<PathBuf>) -> anyhow::Result<AuthSettings> {
    let file = settings::config_file(config);
    let loaded: TokenSettings =
        settings::load(file.as_deref(), auth::settings::secret_override()?)?;
    Ok(loaded.auth)
}

async fn connect(database_url: &str) -> anyhow::Result<AsyncPgConnection> {
    store::migrate::ensure_current(database_url).await?;
    store::pool::connect(database_url)
        .await
        .context("Connecting to PostgreSQL failed.")
}

/// Reads a password: twice from the terminal without echo, or one line from standard input
/// (for scripts). Never from a flag: command lines are visible to every user.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            bail!("the passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// `threesigma user add`.
pub async fn add_user(
    database_url: &str,
    email: &str,
    role: Role,
    password: Option<String>,
) -> anyhow::Result<store::users::User> {
    let email = email.trim();
    if !email.contains('@') || email.len() > 254 {
        bail!("{email:?} is not an email address");
    }
    let password = match password {
        Some(password) => password,
        None => read_password()?,
    };
    let hash = password::hash(&password)?;
    let mut conn = connect(database_url).await?;
    store::users::add(&mut conn, email, &hash, role.as_str())
        .await?
        .with_context(|| format!("a user with email {email} exists already"))
}

/// `threesigma user list`.
pub async fn list_users(database_url: &str) -> anyhow::Result<Vec<store::users::User>> {
    let mut conn = connect(database_url).await?;
    Ok(store::users::list(&mut conn).await?)
}

/// `threesigma token issue`: a long-lived token, e.g. for a log shipper.
pub fn issue_token(
    auth: &AuthSettings,
    subject: &str,
    scopes: &[Scope],
    ttl: Duration,
) -> anyhow::Result<auth::IssuedToken> {
    if subject.trim().is_empty() {
        bail!("--subject must not be empty");
    }
    let signer = auth
        .signer()?
        .context("no signing key: set JWT_SECRET (HS256) or auth.private_key_file (EdDSA/RS256)")?;
    Ok(signer.issue(subject, scopes, None, ttl)?)
}

/// What to revoke: a whole token (its jti and expiry are read from it) or a bare jti.
pub fn revocation_target(token_or_jti: &str) -> anyhow::Result<(String, DateTime<Utc>)> {
    let text = token_or_jti.trim();
    if text.split('.').count() == 3 {
        // Only the claims are needed, and revoking needs no proof of validity: a forged
        // token revoked is harmless.
        let payload = text.split('.').nth(1).unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .context("not a JWT")?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).context("not a JWT")?;
        let jti = claims["jti"]
            .as_str()
            .context("the token has no jti")?
            .to_owned();
        let exp = claims["exp"].as_i64().context("the token has no exp")?;
        let expires_at = DateTime::<Utc>::from_timestamp(exp, 0).context("bad exp")?;
        Ok((jti, expires_at))
    } else if !text.is_empty() {
        // A bare jti: keep it revoked for longer than any token lives.
        Ok((text.to_owned(), Utc::now() + chrono::Duration::days(3650)))
    } else {
        bail!("give a token or its jti")
    }
}

/// `threesigma token revoke`: every service refuses the token within
/// `auth.revocation_refresh` (5 s).
pub async fn revoke_token(
    database_url: &str,
    token_or_jti: &str,
    reason: &str,
) -> anyhow::Result<String> {
    let (jti, expires_at) = revocation_target(token_or_jti)?;
    let mut conn = connect(database_url).await?;
    store::users::revoke_token(&mut conn, &jti, expires_at, reason).await?;
    Ok(jti)
}

/// A random password or secret of `length` letters and digits.
pub fn random_secret(length: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..length)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_reads_the_jti_of_a_token() {
        let auth = AuthSettings {
            secret: "0123456789abcdef0123456789abcdef".into(),
            ..AuthSettings::default()
        };
        let issued = issue_token(
            &auth,
            "shipper",
            &[Scope::Ingest],
            Duration::from_secs(3600),
        )
        .unwrap();
        let (jti, expires_at) = revocation_target(&issued.token).unwrap();
        assert_eq!(jti, issued.jti);
        assert_eq!(expires_at.timestamp(), issued.expires_at.timestamp());
        let (bare, _) = revocation_target("abc123").unwrap();
        assert_eq!(bare, "abc123");
    }
}
