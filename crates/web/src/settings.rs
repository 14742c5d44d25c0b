//! Layered settings, the same way in every binary:
//! defaults → TOML file (`--config` / `THREESIGMA_CONFIG`) → environment
//! (`THREESIGMA__SECTION__KEY`) → command-line flags (each also readable from its env var).
//!
//! Each binary's settings type is a serde struct whose `Default` is the single source of the
//! defaults; [`settings_help`] renders them, with their environment variables, into `--help`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Prefix of every settings environment variable.
pub const ENV_PREFIX: &str = "THREESIGMA";

/// A setting is missing, malformed or unsafe. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("settings: {setting}: {reason}")]
    Invalid { setting: String, reason: String },
}

impl SettingsError {
    pub fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// Command-line values that override every other layer: `(dotted key, value)`. `None`
/// means the flag was not given.
pub type Overrides = Vec<(&'static str, Option<String>)>;

/// The config file to read: the flag, else `THREESIGMA_CONFIG`.
pub fn config_file(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("THREESIGMA_CONFIG").map(PathBuf::from))
}

/// Loads settings of type `T` through every layer.
pub fn load<T>(file: Option<&Path>, overrides: Overrides) -> Result<T, SettingsError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut builder = Config::builder().add_source(Config::try_from(&T::default())?);
    if let Some(path) = file {
        builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
    }
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            // Lists from the environment are comma-separated; only these keys are lists.
            .list_separator(",")
            .with_list_parse_key("server.cors_origins")
            .with_list_parse_key("rate_limit.trusted_proxies")
            .with_list_parse_key("detector.services"),
    );
    for (key, value) in overrides {
        builder = builder.set_override_option(key, value)?;
    }
    Ok(builder.build()?.try_deserialize()?)
}

/// The environment variable of a dotted settings key.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// Every setting of `T` with its default and environment variable, for `--help`.
pub fn settings_help<T: Serialize + Default>() -> String {
    let mut lines = Vec::new();
    if let Ok(value) = toml::Value::try_from(T::default()) {
        collect(&value, "", &mut lines);
    }
    let width = lines
        .iter()
        .map(|(setting, _)| setting.len())
        .max()
        .unwrap_or(0);
    let mut help = String::from(
        "Settings (defaults shown). Set them in the --config TOML file ([section] key = value), \
         as environment variables, or with the flags above:\n",
    );
    for (setting, key) in lines {
        help.push_str(&format!("  {setting:width$}  {}\n", env_var(&key)));
    }
    help
}

fn collect(value: &toml::Value, prefix: &str, lines: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect(inner, &path, lines);
            }
        }
        other => lines.push((format!("{prefix} = {other}"), prefix.to_owned())),
    }
}

/// Serde for durations written the human way (`10s`, `5m`, `90d`); plain integers are
/// seconds.
pub mod duration {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => parse(&text).map_err(serde::de::Error::custom),
            Raw::Seconds(seconds) => Ok(Duration::from_secs(seconds)),
        }
    }

    /// Parses `10s`, `5m`, `1h 30m`, `90d`, `250ms`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|error| {
            format!("invalid duration {text:?} ({error}); write it like 10s, 5m or 90d")
        })
    }
}

/// The HTTP listener of a service.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// `HOST:PORT` to listen on.
    pub bind: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Most open client connections (spread over the workers); further clients wait in the
    /// listen backlog. Each connection with a request in flight holds up to ~64 KiB of
    /// buffered body, so this also bounds that memory.
    pub max_connections: usize,
    /// How long a graceful stop may take before connections are cut.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Origins allowed to call from a browser (CORS); empty: none (CORS off).
    pub cors_origins: Vec<String>,
}

impl ServerSettings {
    /// Worker threads to start.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }

    /// Connections each worker may hold.
    pub fn connections_per_worker(&self) -> usize {
        self.max_connections.div_ceil(self.worker_count()).max(1)
    }

    pub fn with_bind(bind: &str) -> ServerSettings {
        ServerSettings {
            bind: bind.to_owned(),
            workers: 0,
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
            cors_origins: Vec::new(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings::with_bind("127.0.0.1:0")
    }
}

/// The PostgreSQL connection of a service.
#[derive(Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Connection URL (`DATABASE_URL`). Required.
    pub url: String,
    /// Apply pending migrations at start-up (development convenience; production runs
    /// `threesigma migrate` once).
    pub migrate: bool,
    /// Most pooled connections.
    pub pool_size: usize,
    /// Longest wait for a pooled connection.
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// Longest wait for PostgreSQL to accept a connection.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Server-side statement timeout.
    #[serde(with = "duration")]
    pub statement_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        let pool = store::PoolSettings::default();
        DatabaseSettings {
            url: String::new(),
            migrate: false,
            pool_size: pool.max_size,
            acquire_timeout: pool.acquire_timeout,
            connect_timeout: pool.connect_timeout,
            statement_timeout: pool.statement_timeout,
        }
    }
}

// The URL may hold a password: never print it.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &"<redacted>")
            .field("migrate", &self.migrate)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl DatabaseSettings {
    /// Checks the URL is present and the pool is usable.
    pub fn validate(&self) -> Result<(), SettingsError> {
        require_database_url(&self.url)?;
        require_nonzero("database.pool_size", self.pool_size)
    }

    /// Pool settings for `application_name`.
    pub fn pool(&self, application_name: &str) -> store::PoolSettings {
        store::PoolSettings {
            max_size: self.pool_size,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            statement_timeout: self.statement_timeout,
            application_name: application_name.to_owned(),
        }
    }

    /// Migrates when asked, then refuses to go on if the schema is behind this binary.
    pub async fn prepare_schema(&self) -> Result<(), store::StoreError> {
        if self.migrate {
            let applied = store::migrate::run_pending(&self.url).await?;
            if !applied.is_empty() {
                tracing::info!(?applied, "Applied migrations.");
            }
        }
        store::migrate::ensure_current(&self.url).await
    }
}

/// Fails with a message naming `setting` when `value` is zero.
pub fn require_nonzero<N: PartialEq + Default>(
    setting: &str,
    value: N,
) -> Result<(), SettingsError> {
    if value == N::default() {
        Err(SettingsError::invalid(setting, "must be greater than zero"))
    } else {
        Ok(())
    }
}

/// The database URL, required: a clear message when it is missing.
pub fn require_database_url(url: &str) -> Result<(), SettingsError> {
    if url.trim().is_empty() {
        return Err(SettingsError::invalid(
            "database.url",
            "missing: set DATABASE_URL, --database-url or [database] url",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Inner {
        count: u32,
        #[serde(with = "duration")]
        wait: Duration,
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample {
                name: "x".into(),
                inner: Inner::default(),
            }
        }
    }

    impl Default for Inner {
        fn default() -> Self {
            Inner {
                count: 3,
                wait: Duration::from_secs(10),
            }
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("threesigma-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.toml");
        std::fs::write(
            &file,
            "name = \"file\"\n[inner]\ncount = 7\nwait = \"5m\"\n",
        )
        .unwrap();
        let loaded: Sample = load(
            Some(&file),
            vec![("name", Some("flag".into())), ("inner.count", None)],
        )
        .unwrap();
        assert_eq!(loaded.name, "flag");
        assert_eq!(loaded.inner.count, 7);
        assert_eq!(loaded.inner.wait, Duration::from_secs(300));
        let defaults: Sample = load(None, Vec::new()).unwrap();
        assert_eq!(defaults, Sample::default());
    }

    #[test]
    fn help_lists_every_setting_with_its_env_var() {
        let help = settings_help::<Sample>();
        assert!(help.contains("inner.count = 3"), "{help}");
        assert!(help.contains("THREESIGMA__INNER__WAIT"), "{help}");
        assert!(help.contains("inner.wait = \"10s\""), "{help}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(
            duration::parse("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(
            duration::parse("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(duration::parse("soon").unwrap_err().contains("10s"));
    }
}
