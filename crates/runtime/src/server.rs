//! The `[server]` settings of a process's listener, and binding it.

use std::net::TcpListener;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::duration;

/// The HTTP listener of a service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// `HOST:PORT` to listen on.
    pub bind: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Most open client connections (spread over the workers); further clients wait in the
    /// listen backlog. An idle or stalled connection costs about 21 KiB (3,000 stalled
    /// bodies: 71 MiB); one with a request body in flight holds up to ~64 KiB of it. 2,048
    /// leaves room for probes while hundreds of clients stall (bodies that stall are cut
    /// after `body_idle_timeout`).
    pub max_connections: usize,
    /// Most open connections from one client address (an IPv4 address, an IPv6 /64); 0:
    /// no bound. Requests on connections past it get 429 and the connection is closed
    /// (health and metrics requests excepted). Trusted proxies are not bounded.
    pub max_connections_per_client: usize,
    /// Longest wait for the next chunk of a request body, and longest time to read a whole
    /// one: past either the request gets 408 and its connection is closed (a client that
    /// sends headers and a few bytes, then nothing, no longer holds a connection).
    #[serde(with = "duration")]
    pub body_idle_timeout: Duration,
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// How long a graceful stop may take before connections are cut.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Origins allowed to call from a browser (CORS); empty: none (CORS off).
    pub cors_origins: Vec<String>,
}

impl ServerSettings {
    /// Worker threads to start.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
    }

    /// Connections each worker may hold.
    pub fn connections_per_worker(&self) -> usize {
        self.max_connections.div_ceil(self.worker_count()).max(1)
    }

    pub fn with_bind(bind: &str) -> ServerSettings {
        ServerSettings {
            bind: bind.to_owned(),
            workers: 0,
            max_connections: 2048,
            max_connections_per_client: 256,
            body_idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            cors_origins: Vec::new(),
        }
    }

    /// Refuses values that would stop the server from serving: no connections, or body
    /// deadlines of zero (every body would time out).
    pub fn validate(&self) -> Result<(), crate::SettingsError> {
        use crate::settings::require_nonzero;
        require_nonzero("server.max_connections", self.max_connections)?;
        require_nonzero("server.body_idle_timeout", self.body_idle_timeout)?;
        require_nonzero("server.body_timeout", self.body_timeout)?;
        if self.body_timeout < self.body_idle_timeout {
            return Err(crate::SettingsError::invalid(
                "server.body_timeout",
                "must not be below server.body_idle_timeout",
            ));
        }
        Ok(())
    }

    /// Binds the listener (`HOST:PORT`; port 0 picks a free one).
    pub fn bind(&self) -> anyhow::Result<TcpListener> {
        use anyhow::Context;
        let listener = TcpListener::bind(&self.bind)
            .with_context(|| format!("Binding {} failed.", self.bind))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings::with_bind("127.0.0.1:0")
    }
}

#[cfg(test)]
mod tests {
    use super::ServerSettings;
    use std::time::Duration;

    #[test]
    fn settings_that_would_stop_serving_are_refused_by_name() {
        assert!(ServerSettings::default().validate().is_ok());
        let zero_idle = ServerSettings {
            body_idle_timeout: Duration::ZERO,
            ..ServerSettings::default()
        };
        let inverted = ServerSettings {
            body_timeout: Duration::from_secs(5),
            ..ServerSettings::default()
        };
        let no_connections = ServerSettings {
            max_connections: 0,
            ..ServerSettings::default()
        };
        for (settings, named) in [
            (zero_idle, "server.body_idle_timeout"),
            (inverted, "server.body_timeout"),
            (no_connections, "server.max_connections"),
        ] {
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
    }
}
