//! Building and running the ingest service.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web::{Data, post, resource, to};
use actix_web::{App, HttpServer, middleware};
use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::batch::{BatchWriter, WriterTasks};
use crate::metrics::IngestMetrics;
use crate::routes::{IngestState, ingest_logs};
use crate::settings::Settings;

/// A built, bound, not yet running ingest service.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    writer_tasks: WriterTasks,
    settings: Settings,
    verifier: web::auth::TokenVerifier,
    pool: store::DbPool,
}

/// Ready when the database answers, the last write reached it, and the queue has room.
struct IngestReadiness {
    pool: store::DbPool,
    writer: BatchWriter,
}

impl web::health::Readiness for IngestReadiness {
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Vec<String>>> + Send + '_>>
    {
        Box::pin(async move {
            let mut reasons = Vec::new();
            if let Err(error) = store::pool::ping(&self.pool).await {
                reasons.push(format!("database: {error}"));
            } else if !self.writer.database_ok() {
                reasons.push("database: last batch write failed".to_owned());
            }
            if self.writer.is_saturated() {
                reasons.push("queue: full".to_owned());
            }
            if reasons.is_empty() {
                Ok(())
            } else {
                Err(reasons)
            }
        })
    }
}

impl Application {
    /// Validates settings, checks the schema, binds the listener and starts the writers.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.validate()?;
        settings
            .database
            .prepare_schema()
            .await
            .context("Preparing the database schema failed.")?;
        let listener = web::server::bind(&settings.server.bind)
            .with_context(|| format!("Binding {} failed.", settings.server.bind))?;
        Self::build_with_listener(settings, listener)
    }

    fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let port = listener.local_addr()?.port();
        let pool = store::pool::build_pool(
            &settings.database.url,
            &settings.database.pool("threesigma-ingest"),
        )?;
        let revocation_pool = pool.clone();
        let writer_config = store::pool::connection_config(
            &settings.database.url,
            &settings.database.pool("threesigma-ingest-writer"),
        )?;

        let mut registry = Registry::with_prefix("threesigma");
        let http_metrics = web::metrics::HttpMetrics::register(&mut registry);
        let metrics = IngestMetrics::register(&mut registry);
        let (writer, writer_tasks) =
            BatchWriter::start(settings.batch(), writer_config, metrics.clone());

        let state = Data::new(IngestState {
            writer: writer.clone(),
            inflight: Arc::new(tokio::sync::Semaphore::new(
                settings.ingest.max_inflight_bytes,
            )),
            inflight_capacity: settings.ingest.max_inflight_bytes,
            admission_timeout: settings.ingest.enqueue_timeout,
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting: settings.ingest.max_waiting_requests,
            metrics,
            ack: settings.ingest.ack,
            max_body_bytes: settings.ingest.max_body_bytes,
            max_reported_errors: settings.ingest.max_reported_errors,
            limits: settings.event_limits(),
        });
        let readiness = Data::new(web::health::ReadinessCheck(Arc::new(IngestReadiness {
            pool,
            writer,
        })));
        let registry = Data::new(web::metrics::MetricsRegistry(Arc::new(registry)));
        let http_metrics = Data::new(http_metrics);
        let verifier = settings.auth.verifier()?;
        let verifier_data = Data::new(verifier.clone());
        let limiter = settings.rate_limit.general()?;
        let rate_limited = settings.rate_limit.enabled();
        let cors_origins = settings.server.cors_origins.clone();

        let server = HttpServer::new(move || {
            let (query_config, path_config, json_config) = web::error::extractor_configs();
            App::new()
                .wrap(web::error::method_not_allowed_as_json())
                .wrap(web::server::security_headers())
                .wrap(middleware::from_fn(web::metrics::record_request))
                .app_data(state.clone())
                .app_data(readiness.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(query_config)
                .app_data(path_config)
                .app_data(json_config)
                .app_data(verifier_data.clone())
                .configure(web::health::configure)
                .service(
                    web::server::api_scope("", &limiter, rate_limited, &cors_origins)
                        .service(resource("/api/v1/logs").route(post().to(ingest_logs)))
                        .service(resource("/ingest").route(post().to(ingest_logs))),
                )
                .default_service(to(web::error::not_found))
        })
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_grace.as_secs().max(1))
        .workers(settings.server.worker_count())
        .max_connections(settings.server.connections_per_worker());
        let server = server.listen(listener)?.run();
        Ok(Application {
            port,
            server,
            writer_tasks,
            settings,
            verifier,
            pool: revocation_pool,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, answers every in-flight
    /// request, flushes everything queued, and returns.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "Ingest is listening.");
        let revocations = self.verifier.refresh_revocations(
            self.pool.clone(),
            self.settings.auth.revocation_refresh,
            shutdown.clone(),
        );
        let grace = self.settings.server.shutdown_grace;
        let writer_tasks = &self.writer_tasks;
        let hurry = async {
            shutdown.cancelled().await;
            writer_tasks.hurry();
        };
        let (served, ()) = tokio::join!(
            web::server::run_until(self.server, shutdown.clone(), grace),
            hurry
        );
        served?;
        self.writer_tasks.drain(grace).await;
        revocations.abort();
        tracing::info!("Ingest stopped.");
        Ok(())
    }
}
