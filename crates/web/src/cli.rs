//! Command-line flags every service shares. Each flag is also read from the environment
//! variable of the setting it overrides, so flags, env and config files never disagree.

use std::path::PathBuf;

use clap::Args;

use crate::settings::{Overrides, SettingsError};

/// `--bind`, `--database-url`, `--config`, `--migrate`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Address to listen on, HOST:PORT.
    #[arg(long, env = "THREESIGMA__SERVER__BIND", value_name = "HOST:PORT")]
    pub bind: Option<String>,
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// TOML settings file.
    #[arg(long, env = "THREESIGMA_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Apply pending database migrations before starting.
    #[arg(long, env = "THREESIGMA__DATABASE__MIGRATE")]
    pub migrate: bool,
    /// Probe /healthz of this service on this host and exit 0 if it answers 200 (for
    /// container HEALTHCHECKs; the images have no shell or curl).
    #[arg(long)]
    pub healthcheck: bool,
}

impl CommonArgs {
    /// `--healthcheck`: probes the service this command line would start. Only the bind
    /// address is read (flag, env, config file, else the service's default), so a probe
    /// never fails over a setting the running service has already accepted.
    pub fn healthcheck<T>(&self) -> anyhow::Result<()>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Default,
    {
        #[derive(serde::Deserialize)]
        struct Bind {
            server: Server,
        }
        #[derive(serde::Deserialize)]
        struct Server {
            bind: String,
        }
        let file = crate::settings::config_file(self.config.clone());
        let loaded: serde_json::Value =
            crate::settings::load::<T>(file.as_deref(), vec![("server.bind", self.bind.clone())])
                .map(|settings: T| serde_json::to_value(settings))??;
        let bind: Bind = serde_json::from_value(loaded)?;
        crate::health::probe(&bind.server.bind)
    }

    /// The overrides these flags contribute, and the JWT secret from `JWT_SECRET` or
    /// `JWT_SECRET_FILE` (secrets are never flags: command lines are visible to every user).
    pub fn overrides(&self) -> Result<Overrides, SettingsError> {
        Ok(vec![
            ("server.bind", self.bind.clone()),
            ("database.url", self.database_url.clone()),
            ("database.migrate", self.migrate.then(|| "true".to_owned())),
            ("auth.secret", crate::auth::secret_from_env()?),
        ])
    }
}
