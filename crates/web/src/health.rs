//! `/healthz`, `/readyz` and `/metrics`, the same on every service.
//!
//! `/healthz` says the process is alive (it answers while the database is down, so an
//! orchestrator does not restart a service that is merely waiting). `/readyz` asks the
//! service's [`Readiness`] (database reachable, queue not full, ...) and answers 503 with
//! the reasons when it fails, so load balancers route around it.

use actix_web::{HttpResponse, web};
use runtime::{MetricsRegistry, Readiness};
use serde_json::json;

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    match readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(reasons) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"status": "not_ready", "reasons": reasons})),
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(registry: web::Data<MetricsRegistry>) -> HttpResponse {
    match registry.encode() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(body),
        Err(error) => {
            tracing::error!(%error, "Encoding metrics failed.");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Registers `/healthz`, `/readyz` and `/metrics` (needs [`Readiness`] and
/// [`MetricsRegistry`] as app data; the service builder adds both). Resources, so another
/// method is a 405 with `Allow`; HEAD is answered like GET (load balancers probe with it).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/healthz")
                .route(web::get().to(healthz))
                .route(web::head().to(healthz)),
        )
        .service(
            web::resource("/readyz")
                .route(web::get().to(readyz))
                .route(web::head().to(readyz)),
        )
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}
