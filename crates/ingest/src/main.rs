use std::time::Duration;

use clap::Parser;
use ingest::settings::{AckMode, Settings};
use web::settings::{self, Overrides};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// threesigma-ingest: HTTP log ingestion into PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, after_help = settings::settings_help::<Settings>())]
struct Cli {
    #[command(flatten)]
    common: web::cli::CommonArgs,
    /// Concurrent batch writers (one PostgreSQL connection each).
    #[arg(long, env = "THREESIGMA__INGEST__WRITERS")]
    writers: Option<usize>,
    /// Events per batch at most (1 reproduces the naive INSERT-per-request design).
    #[arg(long, env = "THREESIGMA__INGEST__MAX_BATCH_EVENTS")]
    max_batch_events: Option<usize>,
    /// Bytes per batch at most.
    #[arg(long, env = "THREESIGMA__INGEST__MAX_BATCH_BYTES")]
    max_batch_bytes: Option<usize>,
    /// How long a batch waits for more events, e.g. 10ms.
    #[arg(long, env = "THREESIGMA__INGEST__LINGER", value_parser = settings::duration::parse)]
    linger: Option<Duration>,
    /// durable: 200 after commit; buffered: 202 after queueing (may lose events on a crash).
    #[arg(long, env = "THREESIGMA__INGEST__ACK", value_enum)]
    ack: Option<AckMode>,
    /// How log rows are written: copy or unnest.
    #[arg(long, env = "THREESIGMA__INGEST__BULK_METHOD", value_parser = ["copy", "unnest"])]
    bulk_method: Option<String>,
    /// Largest request body after decompression, in bytes.
    #[arg(long, env = "THREESIGMA__INGEST__MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
}

impl Cli {
    fn overrides(&self) -> Result<Overrides, web::SettingsError> {
        let mut overrides = self.common.overrides()?;
        overrides.extend([
            ("ingest.writers", self.writers.map(|v| v.to_string())),
            (
                "ingest.max_batch_events",
                self.max_batch_events.map(|v| v.to_string()),
            ),
            (
                "ingest.max_batch_bytes",
                self.max_batch_bytes.map(|v| v.to_string()),
            ),
            (
                "ingest.linger",
                self.linger
                    .map(|v| humantime::format_duration(v).to_string()),
            ),
            (
                "ingest.ack",
                self.ack.map(|v| format!("{v:?}").to_lowercase()),
            ),
            (
                "ingest.max_body_bytes",
                self.max_body_bytes.map(|v| v.to_string()),
            ),
        ]);
        Ok(overrides)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    web::server::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.common.healthcheck {
        return cli.common.healthcheck::<Settings>();
    }
    web::telemetry::init();
    let file = settings::config_file(cli.common.config.clone());
    let settings: Settings = settings::load(file.as_deref(), cli.overrides()?)?;
    let app = ingest::Application::build(settings).await?;
    app.run_until(web::server::shutdown_on_signal()).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
