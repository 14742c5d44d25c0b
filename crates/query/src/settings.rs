//! Query API settings: defaults here, then the config file, env and flags.

use access::RateLimitSettings;
use auth::AuthSettings;
use runtime::settings::duration;
use runtime::{DatabaseSettings, Layered, Secret, ServerSettings, SettingsError};
use serde::{Deserialize, Serialize};

/// Everything `threesigma-query` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub query: QuerySettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
}

impl Layered for Settings {
    const LIST_KEYS: &'static [&'static str] =
        &["server.cors_origins", "rate_limit.trusted_proxies"];
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::with_bind("0.0.0.0:8081"),
            database: DatabaseSettings::default(),
            query: QuerySettings::default(),
            auth: AuthSettings::default(),
            // Per user: an interactive client or a dashboard, not a scraper.
            rate_limit: RateLimitSettings::with_rate(50, 100),
        }
    }
}

/// Paging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QuerySettings {
    /// Page size when `limit` is not given.
    pub default_limit: i64,
    /// Largest `limit` accepted.
    pub max_limit: i64,
    /// Largest request body (login and operator actions are small).
    pub max_body_bytes: usize,
    /// Connection URL of a read replica for lists and details (`DATABASE_READ_URL`);
    /// empty: read from the primary. Writes, logins and revocations always use the primary.
    /// May hold a password: a [`Secret`].
    pub read_url: Secret,
    /// How long one page of a log search may read before it answers with what it found and
    /// a cursor to continue from (a wide range or a rare substring is paged, never timed
    /// out).
    #[serde(with = "duration")]
    pub search_budget: std::time::Duration,
    /// Log searches one query process runs at once; more wait up to `search_budget` for a
    /// turn, then are answered 503 with `Retry-After`. Keep it below `database.pool_size`
    /// so searches (each holding a connection up to `search_budget` a page) cannot take
    /// every connection from incident reads and operator actions.
    pub max_concurrent_searches: usize,
}

impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            default_limit: 50,
            max_limit: 500,
            max_body_bytes: 16 * 1024,
            read_url: Secret::default(),
            search_budget: std::time::Duration::from_secs(2),
            max_concurrent_searches: 4,
        }
    }
}

impl Settings {
    /// Refuses unusable values with a message naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.database.validate()?;
        self.server.validate()?;
        self.auth.verifier()?;
        self.auth.signer()?;
        let _ = self.rate_limit.general()?;
        let _ = self.rate_limit.login()?;
        if self.auth.console_session_ttl.is_zero()
            || self.auth.console_session_ttl > auth::token::MAX_TTL
        {
            return Err(SettingsError::invalid(
                "auth.console_session_ttl",
                "must be between 1s and 366 days",
            ));
        }
        if self.query.max_limit < 1 {
            return Err(SettingsError::invalid(
                "query.max_limit",
                "must be at least 1",
            ));
        }
        if !(1..=self.query.max_limit).contains(&self.query.default_limit) {
            return Err(SettingsError::invalid(
                "query.default_limit",
                "must be between 1 and query.max_limit",
            ));
        }
        if self.query.search_budget.is_zero() {
            return Err(SettingsError::invalid(
                "query.search_budget",
                "must be more than 0 (a page reads at least one slice)",
            ));
        }
        if self.query.max_concurrent_searches == 0 {
            return Err(SettingsError::invalid(
                "query.max_concurrent_searches",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
