//! Command-line flags every service shares. Each flag is also read from the environment
//! variable of the setting it overrides, so flags, env and config files never disagree.

use std::path::PathBuf;

use clap::Args;

use crate::settings::{Layered, Overrides};

/// `--bind`, `--database-url`, `--config`, `--migrate`, `--healthcheck`.
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
    /// The config file these flags name (`--config`, else `THREESIGMA_CONFIG`).
    pub fn config_file(&self) -> Option<PathBuf> {
        crate::settings::config_file(self.config.clone())
    }

    /// Loads `T` through every layer with these flags, and `more` (the binary's own flags),
    /// on top.
    pub fn load<T: Layered>(&self, more: Overrides) -> Result<T, crate::SettingsError> {
        crate::settings::load(self.config_file().as_deref(), self.overrides().and(more))
    }

    /// `--healthcheck`: probes the service this command line would start. Only the bind
    /// address is read (flag, env, config file, else the service's default), so a probe
    /// never fails over a setting the running service has already accepted.
    pub fn healthcheck<T: Layered>(&self) -> anyhow::Result<()> {
        #[derive(serde::Deserialize)]
        struct Bind {
            server: Server,
        }
        #[derive(serde::Deserialize)]
        struct Server {
            bind: String,
        }
        let bind: Bind = crate::settings::load_as::<T, Bind>(
            self.config_file().as_deref(),
            Overrides::new().set("server.bind", self.bind.clone()),
        )?;
        crate::health::probe(&bind.server.bind)
    }

    /// The overrides these flags contribute.
    pub fn overrides(&self) -> Overrides {
        Overrides::new()
            .set("server.bind", self.bind.clone())
            .set("database.url", self.database_url.clone())
            .switch("database.migrate", self.migrate)
    }
}
