//! Finding a PostgreSQL for `threesigma up`: `DATABASE_URL` when given; else a server on
//! 127.0.0.1:5432; else a private cluster under `./.threesigma/pg`, made with the local
//! PostgreSQL binaries (run as the `postgres` user when we are root, since PostgreSQL
//! refuses to run as root).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
pub use store::cluster::PrivateCluster;

/// The database `up` creates and uses on a server it found or started.
pub const DATABASE_NAME: &str = "threesigma";
/// The conventional local server.
const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where the data lives, and the cluster to stop afterwards if we started one.
pub struct Database {
    pub url: String,
    /// Human description for the start-up banner (never contains a password).
    pub description: String,
    pub cluster: Option<PrivateCluster>,
}

/// Resolves the database for `up`.
pub async fn resolve(
    explicit: Option<String>,
    pg_dir: &Path,
    pg_port: u16,
) -> anyhow::Result<Database> {
    if let Some(url) = explicit {
        return Ok(Database {
            description: "DATABASE_URL".to_owned(),
            url,
            cluster: None,
        });
    }
    if reachable(LOCAL_SERVER).await {
        let url = ensure_database(LOCAL_SERVER).await?;
        return Ok(Database {
            url,
            description: format!("database {DATABASE_NAME} on the local server 127.0.0.1:5432"),
            cluster: None,
        });
    }
    let cluster = PrivateCluster::start(pg_dir, pg_port)
        .context("Starting a private PostgreSQL cluster failed.")?;
    let admin = format!("postgres://postgres@127.0.0.1:{pg_port}/postgres");
    let url = ensure_database(&admin).await?;
    Ok(Database {
        url,
        description: format!("private cluster in {} (port {pg_port})", pg_dir.display()),
        cluster: Some(cluster),
    })
}

async fn reachable(url: &str) -> bool {
    let connect = tokio_postgres::connect(url, tokio_postgres::NoTls);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

/// Creates the `threesigma` database on the server of `admin_url` if missing; returns its URL.
async fn ensure_database(admin_url: &str) -> anyhow::Result<String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .context("Connecting to PostgreSQL failed.")?;
    tokio::spawn(connection);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&DATABASE_NAME],
        )
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{DATABASE_NAME}\""))
            .await
            .context("Creating the threesigma database failed.")?;
    }
    Ok(store::pool::with_database(admin_url, DATABASE_NAME))
}
