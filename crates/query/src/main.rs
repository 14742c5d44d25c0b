use clap::Parser;
use query::Settings;
use web::settings;

/// threesigma-query: paginated reads of incidents and logs.
#[derive(Debug, Parser)]
#[command(version, after_help = settings::settings_help::<Settings>())]
struct Cli {
    #[command(flatten)]
    common: web::cli::CommonArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    web::server::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    web::telemetry::init();
    let cli = Cli::parse();
    let file = settings::config_file(cli.common.config.clone());
    let settings: Settings = settings::load(file.as_deref(), cli.common.overrides()?)?;
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
