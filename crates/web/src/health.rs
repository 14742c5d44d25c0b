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
