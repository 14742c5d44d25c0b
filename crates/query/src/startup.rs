//! Building and running the query API.

use actix_web::web::{Data, delete, get, post, resource};
use anyhow::Context;
use runtime::Readiness;
use tokio_util::sync::CancellationToken;
use web::HttpService;

use crate::routes::{QueryState, incidents, login, logs, services, session};
use crate::settings::Settings;

/// A built, bound, not yet running query API.
pub struct Application {
    http: HttpService,
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
        let listener = settings.server.bind()?;
        // Built now, not by the first login for an unknown email (a timing tell).
        auth::password::decoy();
        let pool = settings.database.build_pool("threesigma-query")?;
        let mut readiness = Readiness::new().database("database", pool.clone());
        let read_pool = if settings.query.read_url.is_empty() {
            pool.clone()
        } else {
            let read_pool = store::pool::build_pool(
                settings.query.read_url.expose(),
                &settings.database.pool("threesigma-query-read"),
            )?;
            readiness = readiness.database("read database", read_pool.clone());
            read_pool
        };
        let guard = access::ApiGuard::new(
            &settings.auth,
            &settings.rate_limit,
            &settings.server.cors_origins,
        )?;
        let openapi = crate::openapi::document(settings.query.max_limit);
        let sessions = access::session::ConsoleSessions::new(guard.trusted_proxies());
        let state = Data::new(QueryState {
            read_pool,
            pool: pool.clone(),
            default_limit: settings.query.default_limit,
            max_limit: settings.query.max_limit,
            search_budget: settings.query.search_budget,
            searches: tokio::sync::Semaphore::new(settings.query.max_concurrent_searches),
            signer: settings.auth.signer()?,
            session_ttl: settings.auth.session_ttl,
            console_session_ttl: settings.auth.console_session_ttl,
        });

        let http = HttpService::builder(&settings.server, runtime::metrics::registry(), readiness)
            .body_limit(settings.query.max_body_bytes)
            .background(guard.revocations(pool))
            .background(guard.pruning())
            .trusted_proxies(guard.trusted_proxies())
            .serve(listener, move |config| {
                config
                    .app_data(state.clone())
                    .app_data(guard.verifier())
                    .app_data(sessions.clone())
                    .configure(crate::console::configure)
                    .service(
                        utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs/{_:.*}")
                            .url("/api/v1/openapi.json", openapi.clone()),
                    )
                    .service(
                        guard
                            .scope("/api/v1")
                            .service(
                                resource("/auth/login")
                                    .wrap(guard.login_limit())
                                    .route(post().to(login::login)),
                            )
                            .service(
                                resource("/auth/session")
                                    .route(post().to(session::create).wrap(guard.login_limit()))
                                    .route(get().to(session::show))
                                    .route(delete().to(session::delete)),
                            )
                            // Resources, not scope routes: another method on a known path is
                            // a 405 with `Allow`, not a 404.
                            .service(resource("/incidents").route(get().to(incidents::list)))
                            .service(resource("/incidents/{id}").route(get().to(incidents::detail)))
                            .service(
                                resource("/incidents/{id}/logs").route(get().to(incidents::logs)),
                            )
                            .service(
                                resource("/incidents/{id}/acknowledge")
                                    .route(post().to(incidents::acknowledge)),
                            )
                            .service(
                                resource("/incidents/{id}/resolve")
                                    .route(post().to(incidents::resolve)),
                            )
                            .service(resource("/logs").route(get().to(logs::list)))
                            .service(resource("/services").route(get().to(services::list)))
                            .service(
                                resource("/services/{name}/series")
                                    .route(get().to(services::series)),
                            )
                            .service(
                                resource("/services/{name}/patterns")
                                    .route(get().to(services::patterns)),
                            ),
                    );
            })?;
        Ok(Application { http })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// Serves until `shutdown` is cancelled, then answers in-flight requests and returns.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(port = self.port(), "Query API is listening.");
        self.http.run_until(shutdown).await?;
        tracing::info!("Query API stopped.");
        Ok(())
    }
}
