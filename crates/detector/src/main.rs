use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use detector::Settings;
use web::settings::{self, Overrides};

/// threesigma-detector: per-service error anomaly detection.
#[derive(Debug, Parser)]
#[command(version, after_help = settings::settings_help::<Settings>())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: web::cli::CommonArgs,
    /// Time between evaluations, e.g. 10s.
    #[arg(long, env = "THREESIGMA__DETECTOR__INTERVAL", value_parser = settings::duration::parse, global = true)]
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
    },
    /// Run one live evaluation now and print what it decided.
    Once,
}

impl Cli {
    fn overrides(&self) -> Result<Overrides, web::SettingsError> {
        let mut overrides = self.common.overrides()?;
        overrides.push((
            "detector.interval",
            self.interval
                .map(|v| humantime::format_duration(v).to_string()),
        ));
        Ok(overrides)
    }

    fn settings(&self) -> anyhow::Result<Settings> {
        let file = settings::config_file(self.common.config.clone());
        let mut settings: Settings = settings::load(file.as_deref(), self.overrides()?)?;
        if !self.services.is_empty() {
            settings.detector.services = self.services.clone();
        }
        Ok(settings)
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
    match &cli.command {
        Some(Command::Replay { input }) => replay(&cli, input),
        Some(Command::Once) => {
            web::telemetry::init();
            let app = detector::Application::build(cli.settings()?).await?;
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
            web::telemetry::init();
            let app = detector::Application::build(cli.settings()?).await?;
            app.run_until(web::server::shutdown_on_signal()).await
        }
    }
}

fn replay(cli: &Cli, input: &PathBuf) -> anyhow::Result<()> {
    use std::io::Write;
    let file = settings::config_file(cli.common.config.clone());
    let settings: Settings = settings::load(file.as_deref(), Vec::new())?;
    let config = settings.detection.config()?;
    let counts = if input.as_os_str() == "-" {
        detector::replay::Counts::read(std::io::stdin().lock())
    } else {
        let reader =
            std::fs::File::open(input).with_context(|| format!("Opening {}.", input.display()))?;
        detector::replay::Counts::read(std::io::BufReader::new(reader))
    }?;
    let incidents = detector::replay::replay(&config, &counts)?;
    let mut out = std::io::stdout().lock();
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
