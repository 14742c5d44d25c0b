use std::time::Duration;

use clap::Parser;
use ingest::settings::{AckMode, BulkMethod, Settings};
use runtime::settings::{duration, settings_help};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// threesigma-ingest: HTTP log ingestion into PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, after_help = settings_help::<Settings>())]
struct Cli {
    #[command(flatten)]
    common: runtime::cli::CommonArgs,
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
    #[arg(long, env = "THREESIGMA__INGEST__LINGER", value_parser = duration::parse)]
    linger: Option<Duration>,
    /// durable: 200 after commit; buffered: 202 after queueing (may lose events on a crash).
    #[arg(long, env = "THREESIGMA__INGEST__ACK", value_enum)]
    ack: Option<AckMode>,
    /// How log rows are written: copy or unnest.
    #[arg(long, env = "THREESIGMA__INGEST__BULK_METHOD", value_parser = str::parse::<BulkMethod>)]
    bulk_method: Option<BulkMethod>,
    /// Largest request body after decompression, in bytes.
    #[arg(long, env = "THREESIGMA__INGEST__MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
}

impl Cli {
    fn settings(&self) -> anyhow::Result<Settings> {
        let flags = auth::settings::secret_override()?
            .set("ingest.writers", self.writers)
            .set("ingest.max_batch_events", self.max_batch_events)
            .set("ingest.max_batch_bytes", self.max_batch_bytes)
            .duration("ingest.linger", self.linger)
            .set("ingest.ack", self.ack)
            .set("ingest.bulk_method", self.bulk_method)
            .set("ingest.max_body_bytes", self.max_body_bytes);
        Ok(self.common.load(flags)?)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::shutdown::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.common.healthcheck {
        return cli.common.healthcheck::<Settings>();
    }
    runtime::telemetry::init();
    let app = ingest::Application::build(cli.settings()?).await?;
    app.run_until(runtime::shutdown::on_signal()).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
