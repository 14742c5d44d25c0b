//! The `[database]` settings of a process, and the schema check every service makes before
//! it serves: migrate when asked, then refuse to start on a schema older than the binary.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::settings::{SettingsError, duration, require_nonzero};

/// The PostgreSQL connection of a service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Connection URL (`DATABASE_URL`). Required. May hold a password: a [`Secret`].
    pub url: Secret,
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
            url: Secret::default(),
            migrate: false,
            pool_size: pool.max_size,
            acquire_timeout: pool.acquire_timeout,
            connect_timeout: pool.connect_timeout,
            statement_timeout: pool.statement_timeout,
        }
    }
}

impl DatabaseSettings {
    /// Default settings with this many pooled connections.
    pub fn with_pool_size(pool_size: usize) -> DatabaseSettings {
        DatabaseSettings {
            pool_size,
            ..DatabaseSettings::default()
        }
    }

    /// The connection URL.
    pub fn url(&self) -> &str {
        self.url.expose()
    }

    /// Checks the URL is present and the pool is usable.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.url.is_empty() {
            return Err(SettingsError::invalid(
                "database.url",
                "missing: set DATABASE_URL, --database-url or [database] url",
            ));
        }
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

    /// A pool of connections to [`DatabaseSettings::url`] named `application_name`.
    pub fn build_pool(&self, application_name: &str) -> Result<store::DbPool, store::StoreError> {
        store::pool::build_pool(self.url(), &self.pool(application_name))
    }

    /// The configuration of a dedicated (unpooled) connection named `application_name`.
    pub fn connection_config(
        &self,
        application_name: &str,
    ) -> Result<store::pool::ConnectionConfig, store::StoreError> {
        store::pool::connection_config(self.url(), &self.pool(application_name))
    }

    /// Migrates when asked, then refuses to go on if the schema is behind this binary.
    pub async fn prepare_schema(&self) -> Result<(), store::StoreError> {
        if self.migrate {
            let applied = store::migrate::run_pending(self.url()).await?;
            if !applied.is_empty() {
                tracing::info!(?applied, "Applied migrations.");
            }
        }
        store::migrate::ensure_current(self.url()).await
    }
}
