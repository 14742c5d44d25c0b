//! Building and running the query API.

use std::sync::Arc;

use actix_web::web::{Data, get, post, resource, to};
use actix_web::{App, HttpServer, middleware};
use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::routes::{QueryState, auth, incidents, logs, services};
use crate::settings::Settings;

/// A built, bound, not yet running query API.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    settings: Settings,
    verifier: web::auth::TokenVerifier,
    pool: store::DbPool,
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
        let read_pool = if settings.query.read_url.is_empty() {
            pool.clone()
        } else {
            store::pool::build_pool(
                &settings.query.read_url,
                &settings.database.pool("threesigma-query-read"),
            )?
        };
        let mut databases = vec![("database", pool.clone())];
        if !settings.query.read_url.is_empty() {
            databases.push(("read database", read_pool.clone()));
        }
        let readiness = Data::new(web::health::ReadinessCheck(Arc::new(
            web::health::DatabasesReady(databases),
        )));
        let verifier = settings.auth.verifier()?;
        let verifier_data = Data::new(verifier.clone());
        let limiter = settings.rate_limit.general()?;
        let rate_limited = settings.rate_limit.enabled();
        let login_limiter = settings.rate_limit.login()?;
        let cors_origins = settings.server.cors_origins.clone();
        let max_body = settings.query.max_body_bytes;
        let openapi = crate::openapi::document(settings.query.max_limit);
        let state = Data::new(QueryState {
            read_pool,
            pool: pool.clone(),
            default_limit: settings.query.default_limit,
            max_limit: settings.query.max_limit,
            signer: settings.auth.signer()?,
            session_ttl: settings.auth.session_ttl,
        });

        let server = HttpServer::new(move || {
            let (query_config, path_config, json_config) = web::error::extractor_configs();
            let json_config = json_config.limit(max_body);
            App::new()
                .wrap(web::error::method_not_allowed_as_json())
                .wrap(web::server::security_headers())
                .wrap(middleware::from_fn(web::metrics::record_request))
                .app_data(state.clone())
                .app_data(readiness.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(verifier_data.clone())
                .app_data(query_config)
                .app_data(path_config)
                .app_data(json_config)
                .app_data(actix_web::web::PayloadConfig::new(max_body))
                .configure(web::health::configure)
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs/{_:.*}")
                        .url("/api/v1/openapi.json", openapi.clone()),
                )
                .service(
                    web::server::api_scope("/api/v1", &limiter, rate_limited, &cors_origins)
                        .service(
                            resource("/auth/login")
                                .wrap(actix_governor::Governor::new(&login_limiter))
                                .route(post().to(auth::login)),
                        )
                        // Resources, not scope routes: another method on a known path is a 405
                        // with `Allow`, not a 404.
                        .service(resource("/incidents").route(get().to(incidents::list)))
                        .service(resource("/incidents/{id}").route(get().to(incidents::detail)))
                        .service(resource("/incidents/{id}/logs").route(get().to(incidents::logs)))
                        .service(
                            resource("/incidents/{id}/acknowledge")
                                .route(post().to(incidents::acknowledge)),
                        )
                        .service(
                            resource("/incidents/{id}/resolve")
                                .route(post().to(incidents::resolve)),
                        )
                        .service(resource("/logs").route(get().to(logs::list)))
                        .service(resource("/services").route(get().to(services::list))),
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
            verifier,
            pool,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then answers in-flight requests and returns.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "Query API is listening.");
        let revocations = self.verifier.refresh_revocations(
            self.pool.clone(),
            self.settings.auth.revocation_refresh,
            shutdown.clone(),
        );
        web::server::run_until(self.server, shutdown, self.settings.server.shutdown_grace).await?;
        revocations.abort();
        tracing::info!("Query API stopped.");
        Ok(())
    }
}
