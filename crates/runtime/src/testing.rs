#![allow(clippy::expect_used)]

//! Test support for the service binaries (feature `testing`): a free local port, and a
//! service binary started on one with environment settings, waited for until its
//! `/healthz` answers, and killed when dropped.
//!
//! ```no_run
//! # async fn example(database_url: &str) {
//! use runtime::testing::ServiceCommand;
//!
//! // In a test of the ingest package: `env!("CARGO_BIN_EXE_threesigma-ingest")`.
//! let binary = "target/debug/threesigma-ingest";
//! let mut ingest = ServiceCommand::new(binary)
//!     .env("DATABASE_URL", database_url)
//!     .env("THREESIGMA__SERVER__WORKERS", "1")
//!     .spawn();
//! ingest.wait_healthy().await;
//! let logs = format!("{}/api/v1/logs", ingest.base_url());
//! # }
//! ```

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long [`Service::wait_healthy`] waits for `/healthz` before failing the test.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(15);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released), for a process
/// that must be told its port before it starts: a service binary, a PostgreSQL cluster.
/// In-process servers should bind `127.0.0.1:0` themselves instead.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A service binary to start on a free local port: `BINARY --bind 127.0.0.1:PORT [ARGS]`
/// with `RUST_LOG=warn`, standard output discarded, and standard error discarded unless
/// `TEST_LOG` is set (then it is the test's). Later [`env`](Self::env) calls override these.
#[derive(Debug)]
pub struct ServiceCommand {
    command: Command,
    name: String,
    port: u16,
    /// Close the reading ends of stdout and stderr at once (a log pipe that went away).
    closed_output: bool,
}

impl ServiceCommand {
    /// `binary` on a free port; usually `env!("CARGO_BIN_EXE_<name>")`.
    pub fn new(binary: impl AsRef<OsStr>) -> ServiceCommand {
        let binary = binary.as_ref();
        let name = Path::new(binary)
            .file_name()
            .unwrap_or(binary)
            .to_string_lossy()
            .into_owned();
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        ServiceCommand {
            command,
            name,
            port,
            closed_output: false,
        }
    }

    /// Stdout and stderr are pipes whose reading ends are closed as soon as the process
    /// starts, as when its output was piped to `head` or its logger went away: every write
    /// of the service fails.
    pub fn closed_output(mut self) -> ServiceCommand {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.closed_output = true;
        self
    }

    /// The port the service will listen on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// One more argument, after `--bind`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> ServiceCommand {
        self.command.arg(arg);
        self
    }

    /// More arguments, after `--bind`.
    pub fn args<I, S>(mut self, args: I) -> ServiceCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// One environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> ServiceCommand {
        self.command.env(key, value);
        self
    }

    /// Environment variables, in order (a later one wins).
    pub fn envs<I, K, V>(mut self, vars: I) -> ServiceCommand
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.command.envs(vars);
        self
    }

    /// Starts it; panics naming the binary if it cannot be started.
    pub fn spawn(mut self) -> Service {
        let mut child = self
            .command
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.name));
        if self.closed_output {
            drop(child.stdout.take());
            drop(child.stderr.take());
        }
        Service {
            child: Some(child),
            name: self.name,
            port: self.port,
        }
    }
}

/// A running service binary started by [`ServiceCommand`]. Dropping it kills the process,
/// so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    name: String,
    port: u16,
}

impl Service {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its listen address, `127.0.0.1:PORT` (what `--bind` was given).
    pub fn bind(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, to which request paths are appended.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.bind())
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// The process itself, e.g. to signal it or read its output pipes.
    pub fn child(&self) -> &Child {
        self.child.as_ref().expect("the process is still owned")
    }

    /// The process itself, mutably.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the process is still owned")
    }

    /// The process, no longer killed on drop (e.g. to wait for it on a blocking thread).
    pub fn into_child(mut self) -> Child {
        self.child.take().expect("the process is still owned")
    }

    /// Waits until `/healthz` answers 200 (asked the way the images' `--healthcheck` asks,
    /// [`crate::health::probe`]); panics if the process exits first or after
    /// [`HEALTHY_WITHIN`].
    pub async fn wait_healthy(&mut self) {
        let started = Instant::now();
        let mut last_error = String::new();
        while started.elapsed() < HEALTHY_WITHIN {
            if let Some(status) = self.child_mut().try_wait().expect("try_wait") {
                panic!("{} exited with {status} before it was healthy", self.name);
            }
            let bind = self.bind();
            match tokio::task::spawn_blocking(move || crate::health::probe(&bind))
                .await
                .expect("the probe thread")
            {
                Ok(()) => return,
                Err(error) => last_error = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} was not healthy at {} within {HEALTHY_WITHIN:?}: {last_error}",
            self.name,
            self.bind()
        );
    }

    /// Kills it (SIGKILL: no drain, no flush) and waits for it to exit.
    pub fn kill(&mut self) -> ExitStatus {
        let child = self.child_mut();
        child.kill().expect("kill");
        child.wait().expect("wait")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
