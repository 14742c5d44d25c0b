use clap::Parser;
use query::Settings;
use web::settings;

/// threesigma-query: paginated reads of incidents and logs.
#[derive(Debug, Parser)]
#[command(version, after_help = settings::settings_help::<Settings>())]
struct Cli {
    #[command(flatten)]
    common: web::cli::CommonArgs,
    /// Connection URL of a read replica for reads (lists and details).
    #[arg(
        long,
        env = "DATABASE_READ_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_read_url: Option<String>,
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
    let settings: Settings = settings::load(file.as_deref(), {
        let mut overrides = cli.common.overrides()?;
        overrides.push(("query.read_url", cli.database_read_url.clone()));
        overrides
    })?;
    let app = query::Application::build(settings).await?;
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
