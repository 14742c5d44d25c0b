//! Readiness: what a service checks before saying it can take work (databases reachable,
//! queue not full, detection cycles succeeding), and the `--healthcheck` probe of container
//! images. The HTTP endpoints that expose them live in the `web` crate.

use std::sync::Arc;

/// A condition of readiness: `Err(reason)` when it does not hold.
type Condition = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A service's readiness: every listed database answers a round trip and every condition
/// holds. Built once at start-up, checked on each `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    databases: Vec<(&'static str, store::DbPool)>,
    conditions: Vec<Condition>,
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Ready only while `pool` answers; `label` names it in the reasons.
    pub fn database(mut self, label: &'static str, pool: store::DbPool) -> Readiness {
        self.databases.push((label, pool));
        self
    }

    /// Ready only while `condition` holds; its error is the reason given.
    pub fn condition(
        mut self,
        condition: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Readiness {
        self.conditions.push(Arc::new(condition));
        self
    }

    /// `Ok` when ready, else every reason it is not.
    pub async fn check(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        for (label, pool) in &self.databases {
            if let Err(error) = store::pool::ping(pool).await {
                reasons.push(format!("{label}: {error}"));
            }
        }
        reasons.extend(self.conditions.iter().filter_map(|check| check().err()));
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }
}

/// `--healthcheck`: asks `/healthz` of the service listening on `bind` on this host and
/// succeeds when it answers 200. Container images are distroless (no shell, no curl), so
/// their `HEALTHCHECK` runs the service's own binary with this flag.
pub fn probe(bind: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
    use std::time::Duration;

    let (host, port) = bind
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("bind address {bind:?} has no port"))?;
    let host = match host.trim_matches(['[', ']']) {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        host => host,
    };
    let address: SocketAddr = (host, port.parse::<u16>()?)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host} has no address"))?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head)?;
    match &head {
        b"HTTP/1.1 200" | b"HTTP/1.0 200" => Ok(()),
        _ => anyhow::bail!(
            "/healthz answered {:?}",
            String::from_utf8_lossy(&head).trim()
        ),
    }
}
