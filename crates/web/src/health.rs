//! `/healthz`, `/readyz` and `/metrics`, the same on every service.
//!
//! `/healthz` says the process is alive (it answers while the database is down, so an
//! orchestrator does not restart a service that is merely waiting). `/readyz` asks the
//! service's own readiness check (database reachable, queue not full, ...) and answers 503
//! with the reasons when it fails, so load balancers route around it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::metrics::{MetricsRegistry, metrics_endpoint};

/// A service's readiness check: `Ok` when ready, else the reasons it is not.
pub trait Readiness: Send + Sync + 'static {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), Vec<String>>> + Send + '_>>;
}

/// Readiness as app data.
#[derive(Clone)]
pub struct ReadinessCheck(pub Arc<dyn Readiness>);

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(check: web::Data<ReadinessCheck>) -> HttpResponse {
    match check.0.check().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(reasons) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"status": "not_ready", "reasons": reasons})),
    }
}

/// Registers `/healthz`, `/readyz` and `/metrics` (needs [`ReadinessCheck`] and
/// [`MetricsRegistry`] as app data).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_endpoint));
}

/// Readiness of a service whose only dependency is the database pool.
pub struct DatabaseReady(pub store::DbPool);

impl Readiness for DatabaseReady {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), Vec<String>>> + Send + '_>> {
        Box::pin(async move {
            store::pool::ping(&self.0)
                .await
                .map_err(|error| vec![format!("database: {error}")])
        })
    }
}

/// Keeps the type in one place for callers that register it.
pub type Registry = MetricsRegistry;

/// Readiness of a service using several databases (the query API's primary and read
/// replica): ready when every one answers; otherwise one reason per database that does not.
pub struct DatabasesReady(pub Vec<(&'static str, store::DbPool)>);

impl Readiness for DatabasesReady {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), Vec<String>>> + Send + '_>> {
        Box::pin(async move {
            let mut reasons = Vec::new();
            for (label, pool) in &self.0 {
                if let Err(error) = store::pool::ping(pool).await {
                    reasons.push(format!("{label}: {error}"));
                }
            }
            if reasons.is_empty() {
                Ok(())
            } else {
                Err(reasons)
            }
        })
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
