//! Building and running the ingest service: settings to a bound [`Application`], its
//! batch writers, and its routes (one per wire format endpoint, each
//! `pipeline::accept::<Format>`).

use std::net::TcpListener;

use access::ApiGuard;
use actix_web::web::{Data, get, head, post, put, resource};
use anyhow::Context;
use runtime::Readiness;
use tokio_util::sync::CancellationToken;
use web::HttpService;

use crate::batch::{BatchWriter, WriterTasks};
use crate::body::InflightBudget;
use crate::formats::{Bulk, Loki, Native, Otlp, bulk};
use crate::metrics::IngestMetrics;
use crate::pipeline::{self, IngestState};
use crate::settings::Settings;

/// A built, bound, not yet running ingest service.
pub struct Application {
    http: HttpService,
    writer_tasks: WriterTasks,
    grace: std::time::Duration,
    otlp_port: Option<u16>,
}

/// Ready when the database answers, the last write reached it, and the queue has room.
fn readiness(pool: store::DbPool, writer: &BatchWriter) -> Readiness {
    let written = writer.clone();
    let queue = writer.clone();
    Readiness::new()
        .database("database", pool)
        .condition(move || {
            written
                .database_ok()
                .then_some(())
                .ok_or_else(|| "database: last batch write failed".to_owned())
        })
        .condition(move || {
            (!queue.is_saturated())
                .then_some(())
                .ok_or_else(|| "queue: full".to_owned())
        })
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
        let listener = settings.server.bind()?;
        Self::build_with_listener(settings, listener)
    }

    fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let pool = settings.database.build_pool("threesigma-ingest")?;
        let writer_config = settings
            .database
            .connection_config("threesigma-ingest-writer")?;

        let mut registry = runtime::metrics::registry();
        let metrics = IngestMetrics::register(&mut registry);
        let indexer_metrics = crate::indexer::IndexerMetrics::register(&mut registry);
        let (writer, writer_tasks) =
            BatchWriter::start(settings.batch(), writer_config, metrics.clone());

        let state = Data::new(IngestState {
            writer: writer.clone(),
            budget: InflightBudget::new(
                settings.ingest.max_inflight_bytes,
                settings.ingest.enqueue_timeout,
                settings.ingest.max_waiting_requests,
                metrics.overloaded.clone(),
            ),
            metrics,
            ack: settings.ingest.ack,
            max_body_bytes: settings.ingest.max_body_bytes,
            max_reported_errors: settings.ingest.max_reported_errors,
            limits: settings.event_limits(),
            shippers: std::sync::Arc::new(settings.shippers()),
        });
        let guard = ApiGuard::new(
            &settings.auth,
            &settings.rate_limit,
            &settings.server.cors_origins,
        )?;
        let otlp = if settings.ingest.otlp_bind.is_empty() {
            None
        } else {
            Some(runtime::ServerSettings::with_bind(&settings.ingest.otlp_bind).bind()?)
        };
        let otlp_port = match &otlp {
            Some(listener) => Some(listener.local_addr()?.port()),
            None => None,
        };
        let mut builder =
            HttpService::builder(&settings.server, registry, readiness(pool.clone(), &writer));
        if let Some(listener) = otlp {
            builder = builder.also_listen(listener);
        }
        let http = builder
            .background(guard.revocations(pool.clone()))
            .background(guard.pruning())
            .background(crate::indexer::task(
                pool,
                settings.ingest.search_index_every,
                indexer_metrics,
            ))
            .trusted_proxies(guard.trusted_proxies())
            .serve(listener, move |config| {
                config
                    .app_data(state.clone())
                    .app_data(guard.verifier())
                    .service(
                        guard
                            .scope("")
                            .service(
                                resource("/api/v1/logs")
                                    .route(post().to(pipeline::accept::<Native>)),
                            )
                            .service(
                                resource("/ingest").route(post().to(pipeline::accept::<Native>)),
                            )
                            .service(
                                resource("/v1/logs").route(post().to(pipeline::accept::<Otlp>)),
                            )
                            .service(
                                resource("/loki/api/v1/push")
                                    .route(post().to(pipeline::accept::<Loki>)),
                            )
                            .service(
                                resource(["/_bulk", "/{index}/_bulk"])
                                    .route(post().to(pipeline::accept::<Bulk>))
                                    .route(put().to(pipeline::accept::<Bulk>)),
                            )
                            .service(
                                resource("/")
                                    .route(get().to(bulk::root))
                                    .route(head().to(bulk::root)),
                            )
                            .service(resource("/_license").route(get().to(bulk::license)))
                            .service(resource("/_cluster/health").route(get().to(bulk::health))),
                    );
            })?;
        Ok(Application {
            http,
            otlp_port,
            writer_tasks,
            grace: settings.server.shutdown_grace,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The OTLP listener's port, when `ingest.otlp_bind` is set.
    pub fn otlp_port(&self) -> Option<u16> {
        self.otlp_port
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, answers every in-flight
    /// request, flushes everything queued, and returns.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port(), "Ingest is listening.");
        let writer_tasks = &self.writer_tasks;
        let hurry = async {
            shutdown.cancelled().await;
            writer_tasks.hurry();
        };
        let (served, ()) = tokio::join!(self.http.run_until(shutdown.clone()), hurry);
        served?;
        self.writer_tasks.drain(self.grace).await;
        tracing::info!("Ingest stopped.");
        Ok(())
    }
}
