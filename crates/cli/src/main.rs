use std::path::PathBuf;
use std::time::Duration;

use auth::{Role, Scope};
use clap::{Parser, Subcommand, ValueEnum};
use cli::access;
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
    /// Operators who log in to the query API.
    #[command(subcommand)]
    User(UserCommand),
    /// Tokens for log shippers and scripts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run ingest, detector and query in one process (migrating first).
    Up(UpArgs),
    /// `up` plus simulated traffic: a 30-minute baseline, then a burst that opens an incident.
    Demo(UpArgs),
    /// Read messages from standard input, one per line, and print each one's template
    /// (variable parts as `<*>`), in the same order.
    Patterns {
        /// Print each template once with its count instead, most frequent first.
        #[arg(long)]
        summary: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is asked for (or read as one line from standard input).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// List users (never their password hashes).
    List {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a new token (signed with JWT_SECRET, or auth.private_key_file of --config).
    Issue {
        /// What the token may do (repeatable): ingest, read, admin.
        #[arg(long = "scope", value_enum, required = true)]
        scopes: Vec<ScopeArg>,
        /// Who the token is for (shown in logs, keys its rate limit), e.g. vector-eu-1.
        #[arg(long)]
        subject: String,
        /// Lifetime, e.g. 90d.
        #[arg(long, default_value = "90d", value_parser = runtime::settings::duration::parse)]
        ttl: Duration,
        #[arg(long, env = "THREESIGMA_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Revoke a token (give the token itself, or its jti); every service refuses it within
    /// seconds.
    Revoke {
        token: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Operator,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Operator => Role::Operator,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScopeArg {
    Ingest,
    Read,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Scope {
        match scope {
            ScopeArg::Ingest => Scope::Ingest,
            ScopeArg::Read => Scope::Read,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::shutdown::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    runtime::telemetry::init();
    match Cli::parse().command {
        Command::Patterns { summary } => {
            cli::patterns::run(std::io::stdin().lock(), std::io::stdout().lock(), summary)?;
            Ok(())
        }
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
        Command::User(UserCommand::Add {
            email,
            role,
            database_url,
        }) => {
            let user = access::add_user(&database_url, &email, role.into(), None).await?;
            println!("Added {} ({}), id {}.", user.email, user.role, user.id);
            Ok(())
        }
        Command::User(UserCommand::List { database_url }) => {
            for user in access::list_users(&database_url).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    user.id,
                    user.email,
                    user.role,
                    user.created_at.to_rfc3339()
                );
            }
            Ok(())
        }
        Command::Token(TokenCommand::Issue {
            scopes,
            subject,
            ttl,
            config,
        }) => {
            let auth = access::auth_settings(config)?;
            let scopes: Vec<Scope> = scopes.into_iter().map(Scope::from).collect();
            let issued = access::issue_token(&auth, &subject, &scopes, ttl)?;
            eprintln!(
                "jti {} expires {}",
                issued.jti,
                issued.expires_at.to_rfc3339()
            );
            println!("{}", issued.token);
            Ok(())
        }
        Command::Token(TokenCommand::Revoke {
            token,
            reason,
            database_url,
        }) => {
            let jti = access::revoke_token(&database_url, &token, &reason).await?;
            println!("Revoked {jti}.");
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
