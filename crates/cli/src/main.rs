use clap::{Parser, Subcommand};
use cli::commands::{self, UpArgs};

/// threesigma: log ingestion and statistical incident detection on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "threesigma", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending database migrations.
    Migrate {
        /// PostgreSQL URL.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Run ingest, detector and query in one process (migrating first).
    Up(UpArgs),
    /// `up` plus simulated traffic: a 30-minute baseline, then a burst that opens an incident.
    Demo(UpArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    web::telemetry::init();
    match Cli::parse().command {
        Command::Migrate { database_url } => {
            let applied = store::migrate::run_pending(&database_url).await?;
            if applied.is_empty() {
                println!("Database schema is up to date.");
            }
            for name in applied {
                println!("Applied {name}");
            }
            Ok(())
        }
        Command::Up(args) => commands::up(args).await,
        Command::Demo(args) => commands::demo(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
