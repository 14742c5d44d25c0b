use clap::Parser;
use query::Settings;
use runtime::settings::settings_help;

/// threesigma-query: paginated reads of incidents and logs.
#[derive(Debug, Parser)]
#[command(version, after_help = settings_help::<Settings>())]
struct Cli {
    #[command(flatten)]
    common: runtime::cli::CommonArgs,
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
    runtime::shutdown::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.common.healthcheck {
        return cli.common.healthcheck::<Settings>();
    }
    runtime::telemetry::init();
    let flags =
        auth::settings::secret_override()?.set("query.read_url", cli.database_read_url.clone());
    let app = query::Application::build(cli.common.load(flags)?).await?;
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
