//! Logging through `tracing`: human-readable by default, JSON lines with
//! `THREESIGMA_LOG_FORMAT=json`; the filter comes from `RUST_LOG` (default `info`).

use std::io::Write;

use tracing_subscriber::EnvFilter;

/// Standard output for log lines, where a failed write is dropped. A closed pipe (the
/// output piped to `head`, a logger restarted) must not take the service with it:
/// tracing-subscriber reports a failed write on stderr, and if stderr is gone too that
/// report panics in whatever task was logging — a signal handler, a writer task.
struct LogOutput;

impl Write for LogOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stdout().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stdout().lock().flush();
        Ok(())
    }
}

/// Always in force, whatever `RUST_LOG` says.
const QUIET_SQL: &str = "tokio_postgres=info";

/// Installs the global subscriber once; later calls (tests, `up`) are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"))
        // tokio-postgres logs every statement's parameters at debug: password hashes, log
        // contents. A `RUST_LOG=debug` must not turn the logs into a copy of the database.
        .add_directive(QUIET_SQL.parse().unwrap_or_default());
    let json = std::env::var("THREESIGMA_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogOutput)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// For tests: logs only when `TEST_LOG` is set, so test output stays readable.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init();
    }
}
