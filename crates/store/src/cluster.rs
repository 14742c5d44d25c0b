//! A private PostgreSQL cluster in a directory of our own, made with the local PostgreSQL
//! binaries (`initdb`, `pg_ctl`): what `threesigma up` starts when no server is reachable,
//! and what reliability tests stop and restart. When we are root it runs as the `postgres`
//! user, since PostgreSQL refuses to run as root.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the cluster could not be set up or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Setup(String),
    #[error("{program} failed: {output}")]
    Command { program: String, output: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, ClusterError>;

/// A PostgreSQL cluster of our own, in a directory of the working tree.
pub struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl PrivateCluster {
    /// Initialises the cluster if needed and starts it if it is not running.
    pub fn start(dir: &Path, port: u16) -> Result<PrivateCluster> {
        let (cluster, dir) = PrivateCluster::prepare(dir)?;
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
        cluster.start_server(&dir, port)?;
        Ok(cluster)
    }

    /// A streaming replica (hot standby: read-only queries) of the cluster listening on
    /// 127.0.0.1:`primary_port`, copied with `pg_basebackup` into `dir` if not there yet,
    /// started on `port`. The primary must allow replication connections from 127.0.0.1
    /// (a cluster made by [`PrivateCluster::start`] does).
    pub fn start_replica(dir: &Path, primary_port: u16, port: u16) -> Result<PrivateCluster> {
        let (cluster, dir) = PrivateCluster::prepare(dir)?;
        if !cluster.data.join("PG_VERSION").exists() {
            let primary_port = primary_port.to_string();
            cluster.run(
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &primary_port,
                    "-U",
                    "postgres",
                    "-D",
                    path(&cluster.data)?,
                    // standby.signal and primary_conninfo: start as a streaming replica.
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
            )?;
        }
        cluster.start_server(&dir, port)?;
        Ok(cluster)
    }

    /// The directories, owned by the user PostgreSQL will run as.
    fn prepare(dir: &Path) -> Result<(PrivateCluster, PathBuf)> {
        let bin = find_binaries()?;
        std::fs::create_dir_all(dir)?;
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
        Ok((PrivateCluster { bin, data, run_as }, dir))
    }

    /// Starts the server on `port` unless it is running.
    fn start_server(&self, dir: &Path, port: u16) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            path(&dir.join("run"))?
        );
        let log = dir.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.data)?,
                "-l",
                path(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
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

    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let output = self.command(program).args(args).output()?;
        if !output.status.success() {
            return Err(ClusterError::Command {
                program: program.to_owned(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Turns TLS on with this certificate (chain, PEM) and key: writes them into the data
    /// directory (owned by the server's user, key mode 0600 as PostgreSQL demands) and
    /// restarts the server (a reload would apply it a moment later, not by return).
    pub fn enable_tls(&self, certificate_pem: &str, key_pem: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for (name, contents) in [("server.crt", certificate_pem), ("server.key", key_pem)] {
            let file = self.data.join(name);
            std::fs::write(&file, contents)?;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&file, Some(uid), Some(gid))?;
            }
        }
        let conf = self.data.join("postgresql.auto.conf");
        let mut settings = std::fs::read_to_string(&conf).unwrap_or_default();
        if !settings.lines().any(|line| line.trim() == "ssl = on") {
            settings
                .push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            std::fs::write(&conf, settings)?;
        }
        // The options (port, socket directory) are kept from the last start; the log file
        // is not, and without one the server would hold our output pipe open.
        let log = self.data.with_file_name("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.data)?,
                "-l",
                path(&log)?,
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        )
    }

    /// Stops the cluster (fast shutdown: sessions are closed, data is safe).
    pub fn stop(&self) -> Result<()> {
        self.run(
            "pg_ctl",
            &["-D", path(&self.data)?, "-m", "fast", "-w", "stop"],
        )
    }
}

fn path(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| ClusterError::Setup(format!("{} is not valid UTF-8", path.display())))
}

/// A directory of PATH with `pg_ctl`, `initdb` and `pg_basebackup`, else the newest
/// /usr/lib/postgresql/<version>/bin.
fn find_binaries() -> Result<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if ["pg_ctl", "initdb", "pg_basebackup"]
                .iter()
                .all(|program| dir.join(program).is_file())
            {
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
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        ClusterError::Setup(
            "no PostgreSQL server binaries found (install postgresql, or set DATABASE_URL)"
                .to_owned(),
        )
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .ok_or_else(|| {
            ClusterError::Setup(
                "running as root needs a 'postgres' user to run PostgreSQL as".to_owned(),
            )
        })
}
