use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use detector::Settings;
use runtime::Overrides;
use runtime::settings::{duration, settings_help};

/// threesigma-detector: per-service error anomaly detection.
#[derive(Debug, Parser)]
#[command(version, after_help = settings_help::<Settings>())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: runtime::cli::CommonArgs,
    /// Time between evaluations, e.g. 10s.
    #[arg(long, env = "THREESIGMA__DETECTOR__INTERVAL", value_parser = duration::parse, global = true)]
    interval: Option<Duration>,
    /// Evaluate only this service (repeatable): the sidecar mode.
    #[arg(long = "service", value_name = "NAME", global = true)]
    services: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run detection over a CSV of per-minute counts (minute,service,errors[,total]) without
    /// a database; print one JSON line per incident.
    Replay {
        /// The CSV file ("-" for standard input).
        #[arg(long)]
        input: PathBuf,
        /// Print one JSON line per service and minute instead: its counts, the baseline mean,
        /// the errors expected, the threshold (the smallest count that would have opened an
        /// incident in that minute alone), z, p, whether it fired and whether it was judged
        /// anomalous.
        #[arg(long)]
        minutes: bool,
    },
    /// Run one live evaluation now and print what it decided.
    Once,
}

impl Cli {
    /// Every flag as a layer of the settings: `--service` replaces `detector.services`,
    /// `--interval` sets `detector.interval`.
    fn overrides(&self) -> Overrides {
        Overrides::new()
            .duration("detector.interval", self.interval)
            .list("detector.services", &self.services)
    }

    fn settings(&self) -> anyhow::Result<Settings> {
        Ok(self.common.load(self.overrides())?)
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
    match &cli.command {
        Some(Command::Replay { input, minutes }) => replay(&cli, input, *minutes),
        Some(Command::Once) => {
            runtime::telemetry::init();
            // One evaluation serves nobody's probes: its health listener takes any free
            // loopback port, so `once` runs beside a live detector holding the configured one.
            let settings: Settings = cli
                .common
                .load(cli.overrides().set("server.bind", Some("127.0.0.1:0")))?;
            let app = detector::Application::build(settings).await?;
            let report = app.detector().unshared().tick(chrono::Utc::now()).await?;
            for decision in &report.decisions {
                println!("{}", serde_json::to_string(decision)?);
            }
            eprintln!(
                "evaluated {} service(s): {} opened, {} reopened, {} updated, {} resolved",
                report.services, report.opened, report.reopened, report.updated, report.resolved
            );
            Ok(())
        }
        None => {
            runtime::telemetry::init();
            let app = detector::Application::build(cli.settings()?).await?;
            app.run_until(runtime::shutdown::on_signal()).await
        }
    }
}

fn replay(cli: &Cli, input: &PathBuf, minutes: bool) -> anyhow::Result<()> {
    use std::io::Write;
    // The same layers as the live detector (file, environment, flags): replay judges with
    // exactly the configuration the live loop would use.
    let settings = cli.settings()?;
    let config = settings.detection.config()?;
    let counts = if input.as_os_str() == "-" {
        detector::replay::Counts::read(std::io::stdin().lock())
    } else {
        let reader =
            std::fs::File::open(input).with_context(|| format!("Opening {}.", input.display()))?;
        detector::replay::Counts::read(std::io::BufReader::new(reader))
    }?;
    let mut counts = counts;
    if let Some(services) = settings.scope() {
        counts.retain_services(&services);
        if counts.is_empty() {
            eprintln!("replay: the input has no rows for {}", services.join(", "));
            return Ok(());
        }
    }
    let mut out = std::io::stdout().lock();
    if minutes {
        for verdict in detector::replay::minutes(&config, &counts)? {
            writeln!(out, "{}", serde_json::to_string(&verdict)?)?;
        }
        return Ok(());
    }
    let incidents = detector::replay::replay(&config, &counts)?;
    for incident in incidents {
        writeln!(out, "{}", serde_json::to_string(&incident)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
