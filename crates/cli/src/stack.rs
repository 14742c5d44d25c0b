//! Ingest, detector and query in one process: what `threesigma up` and `demo` run, and
//! what the end-to-end test starts.

use std::path::PathBuf;
use std::time::Duration;

use runtime::Overrides;
use runtime::settings;
use tokio_util::sync::CancellationToken;

/// Where each service listens, and shared settings.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub database_url: String,
    pub config: Option<PathBuf>,
    pub ingest_bind: String,
    pub query_bind: String,
    pub detector_bind: String,
    /// Overrides the detector's evaluation interval.
    pub detector_interval: Option<Duration>,
    /// The HS256 secret every service uses (when the config does not choose a key pair).
    pub jwt_secret: Option<String>,
}

/// The three services, built and bound.
pub struct Stack {
    ingest: ingest::Application,
    detector: detector::Application,
    query: query::Application,
}

/// The layer `up` puts over the shared config file for the service listening on `bind`.
fn overrides(options: &StackOptions, bind: &str) -> Overrides {
    Overrides::new()
        .set("database.url", Some(&options.database_url))
        .set("server.bind", Some(bind))
        .set("database.migrate", Some(false))
        .set("auth.secret", options.jwt_secret.as_ref())
}

impl Stack {
    /// Migrates once, then builds the three services from the shared config file.
    pub async fn build(options: &StackOptions) -> anyhow::Result<Stack> {
        let applied = store::migrate::run_pending(&options.database_url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "Applied migrations.");
        }
        let file = options.config.as_deref();
        let ingest_settings: ingest::Settings =
            settings::load(file, overrides(options, &options.ingest_bind))?;
        let query_settings: query::Settings =
            settings::load(file, overrides(options, &options.query_bind))?;
        let detector_settings: detector::Settings = settings::load(
            file,
            overrides(options, &options.detector_bind)
                .duration("detector.interval", options.detector_interval),
        )?;
        Ok(Stack {
            ingest: ingest::Application::build(ingest_settings).await?,
            detector: detector::Application::build(detector_settings).await?,
            query: query::Application::build(query_settings).await?,
        })
    }

    pub fn ingest_port(&self) -> u16 {
        self.ingest.port()
    }

    pub fn query_port(&self) -> u16 {
        self.query.port()
    }

    pub fn detector_port(&self) -> u16 {
        self.detector.port()
    }

    /// The live detector, for evaluations on demand.
    pub fn detector(&self) -> detector::Detector {
        self.detector.detector().clone()
    }

    /// Runs all three until `shutdown`; each drains its own work before returning.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (ingest, detector, query) = tokio::join!(
            self.ingest.run_until(shutdown.clone()),
            self.detector.run_until(shutdown.clone()),
            self.query.run_until(shutdown),
        );
        ingest?;
        detector?;
        query?;
        Ok(())
    }
}
