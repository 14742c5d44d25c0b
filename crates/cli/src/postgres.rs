//! Finding a PostgreSQL for `threesigma up`: `DATABASE_URL` when given; else a server on
//! 127.0.0.1:5432; else a private cluster under `./.threesigma/pg`, made with the local
//! PostgreSQL binaries (run as the `postgres` user when we are root, since PostgreSQL
//! refuses to run as root).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

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

/// A PostgreSQL cluster of our own, in a directory of the working tree.
pub struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl PrivateCluster {
    /// Initialises the cluster if needed and starts it if it is not running.
    pub fn start(dir: &Path, port: u16) -> anyhow::Result<PrivateCluster> {
        let bin = find_binaries()?;
        std::fs::create_dir_all(dir).with_context(|| format!("Creating {}.", dir.display()))?;
        let dir = dir.canonicalize()?;
        let run_as = if running_as_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let data = dir.join("data");
        let run = dir.join("run");
        std::fs::create_dir_all(&run)?;
        if let Some((uid, gid)) = run_as {
            for path in [&dir, &run] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
            }
        }
        let cluster = PrivateCluster { bin, data, run_as };
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.run(
                "initdb",
                &[
                    "-D",
                    path(&cluster.data)?,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
            )?;
        }
        if !cluster.is_running() {
            let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", path(&run)?);
            let log = dir.join("postgres.log");
            cluster.run(
                "pg_ctl",
                &[
                    "-D",
                    path(&cluster.data)?,
                    "-l",
                    path(&log)?,
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                    "start",
                ],
            )?;
        }
        Ok(cluster)
    }

    fn is_running(&self) -> bool {
        path(&self.data)
            .map(|data| self.command("pg_ctl").args(["-D", data, "status"]).output())
            .is_ok_and(|output| output.is_ok_and(|output| output.status.success()))
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .with_context(|| format!("Running {program} failed."))?;
        if !output.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Stops the cluster (fast shutdown: sessions are closed, data is safe).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &["-D", path(&self.data)?, "-m", "fast", "-w", "stop"],
        )
    }
}

fn path(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("Paths must be valid UTF-8.")
}

/// `pg_ctl` on PATH, else the newest /usr/lib/postgresql/<version>/bin.
fn find_binaries() -> anyhow::Result<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if dir.join("pg_ctl").is_file() && dir.join("initdb").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("No PostgreSQL server binaries found (install postgresql, or set DATABASE_URL).")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .context("Running as root needs a 'postgres' user to run PostgreSQL as.")
}
