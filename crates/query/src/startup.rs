//! Building and running the query API.

use std::sync::Arc;

use actix_web::web::{Data, get, scope, to};
use actix_web::{App, HttpServer, middleware};
use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::routes::{QueryState, incidents, logs};
use crate::settings::Settings;

/// A built, bound, not yet running query API.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    settings: Settings,
}

impl Application {
    /// Validates settings, checks the schema and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.validate()?;
        settings
            .database
            .prepare_schema()
            .await
            .context("Preparing the database schema failed.")?;
        let listener = web::server::bind(&settings.server.bind)
            .with_context(|| format!("Binding {} failed.", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let pool = store::pool::build_pool(
            &settings.database.url,
            &settings.database.pool("threesigma-query"),
        )?;

        let mut registry = Registry::with_prefix("threesigma");
        let http_metrics = Data::new(web::metrics::HttpMetrics::register(&mut registry));
        let registry = Data::new(web::metrics::MetricsRegistry(Arc::new(registry)));
        let readiness = Data::new(web::health::ReadinessCheck(Arc::new(
            web::health::DatabaseReady(pool.clone()),
        )));
        let state = Data::new(QueryState {
            pool,
            default_limit: settings.query.default_limit,
            max_limit: settings.query.max_limit,
        });

        let server = HttpServer::new(move || {
            let (query_config, path_config, json_config) = web::error::extractor_configs();
            App::new()
                .wrap(middleware::from_fn(web::metrics::record_request))
                .app_data(state.clone())
                .app_data(readiness.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(query_config)
                .app_data(path_config)
                .app_data(json_config)
                .configure(web::health::configure)
                .service(
                    scope("/api/v1")
                        .route("/incidents", get().to(incidents::list))
                        .route("/incidents/{id}", get().to(incidents::detail))
                        .route("/incidents/{id}/logs", get().to(incidents::logs))
                        .route("/logs", get().to(logs::list)),
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
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then answers in-flight requests and returns.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "Query API is listening.");
        web::server::run_until(self.server, shutdown, self.settings.server.shutdown_grace).await?;
        tracing::info!("Query API stopped.");
        Ok(())
    }
}
