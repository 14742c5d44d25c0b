//! [`HttpService`]: the one way a threesigma process serves HTTP. Ingest, query and the
//! detector's health listener are all built here, so they share the same middleware
//! (request metrics, security headers, JSON errors for unknown routes and wrong methods),
//! the same `/healthz`, `/readyz` and `/metrics`, and the same graceful stop.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::web::{Data, JsonConfig, PayloadConfig, ServiceConfig, to};
use actix_web::{App, HttpServer};
use prometheus_client::registry::Registry;
use runtime::{MetricsRegistry, Readiness, ServerSettings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clients::{ClientConnections, refuse_over_bound};
use crate::error::{extractor_configs, method_not_allowed_as_json, not_found};
use crate::headers::security_headers;
use crate::metrics::{HttpMetrics, record_request};

/// A task that runs beside the server until it stops (e.g. the revocation poller).
type Background = Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>;

/// A bound HTTP server, not yet running.
pub struct HttpService {
    port: u16,
    server: actix_web::dev::Server,
    grace: Duration,
    background: Vec<Background>,
}

/// Builds an [`HttpService`]: see [`HttpService::builder`].
pub struct ServiceBuilder {
    settings: ServerSettings,
    registry: Registry,
    readiness: Readiness,
    body_limit: Option<usize>,
    trusted_proxies: Vec<ipnet::IpNet>,
    extra_listeners: Vec<TcpListener>,
    background: Vec<Background>,
}

impl HttpService {
    /// A service listening per `settings`, exposing `registry` (HTTP metrics are added to
    /// it) and `readiness`.
    pub fn builder(
        settings: &ServerSettings,
        registry: Registry,
        readiness: Readiness,
    ) -> ServiceBuilder {
        ServiceBuilder {
            settings: settings.clone(),
            registry,
            readiness,
            body_limit: None,
            trusted_proxies: Vec::new(),
            extra_listeners: Vec::new(),
            background: Vec::new(),
        }
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, then stops gracefully: no new connections,
    /// in-flight requests answered (up to the shutdown grace), background tasks stopped.
    pub async fn run_until(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let tasks: Vec<JoinHandle<()>> = self
            .background
            .into_iter()
            .map(|start| start(shutdown.clone()))
            .collect();
        let handle = self.server.handle();
        let running = tokio::spawn(self.server);
        shutdown.cancelled().await;
        if tokio::time::timeout(self.grace, handle.stop(true))
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.grace, "Graceful stop took too long; stopping.");
            handle.stop(false).await;
        }
        for task in tasks {
            task.abort();
        }
        match running.await {
            Ok(result) => result,
            Err(error) => Err(std::io::Error::other(error)),
        }
    }
}

impl ServiceBuilder {
    /// Largest JSON or buffered request body (default: actix's).
    pub fn body_limit(mut self, bytes: usize) -> ServiceBuilder {
        self.body_limit = Some(bytes);
        self
    }

    /// Proxies whose connections carry many clients: not held to
    /// `server.max_connections_per_client`.
    pub fn trusted_proxies(mut self, proxies: Vec<ipnet::IpNet>) -> ServiceBuilder {
        self.trusted_proxies = proxies;
        self
    }

    /// Serves the same routes on `listener` too (e.g. ingest's OTLP port).
    pub fn also_listen(mut self, listener: TcpListener) -> ServiceBuilder {
        self.extra_listeners.push(listener);
        self
    }

    /// Runs `task` beside the server, from start until the server stops.
    pub fn background(
        mut self,
        task: impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static,
    ) -> ServiceBuilder {
        self.background.push(Box::new(task));
        self
    }

    /// Serves `routes` (and the health endpoints) on `listener`.
    pub fn serve<F>(mut self, listener: TcpListener, routes: F) -> std::io::Result<HttpService>
    where
        F: Fn(&mut ServiceConfig) + Clone + Send + 'static,
    {
        let port = listener.local_addr()?.port();
        let http_metrics = Data::new(HttpMetrics::register(&mut self.registry));
        let refused = prometheus_client::metrics::counter::Counter::default();
        self.registry.register(
            "http_connections_over_client_bound",
            "Connections refused (429, closed) for exceeding server.max_connections_per_client",
            refused.clone(),
        );
        let clients = Arc::new(ClientConnections::new(
            self.settings.max_connections_per_client,
            self.trusted_proxies,
            refused,
        ));
        let registry = Data::new(MetricsRegistry::new(self.registry));
        let readiness = Data::new(self.readiness);
        let body_limit = self.body_limit;
        let grace = self.settings.shutdown_grace;
        let deadlines = Data::new(crate::deadline::BodyDeadlines {
            idle: self.settings.body_idle_timeout,
            total: self.settings.body_timeout,
        });
        let server = HttpServer::new(move || {
            let (query_config, path_config, json_config) = extractor_configs();
            let json_config: JsonConfig = match body_limit {
                Some(limit) => json_config.limit(limit),
                None => json_config,
            };
            let mut app = App::new()
                .wrap(method_not_allowed_as_json())
                .wrap(from_fn(refuse_over_bound))
                .wrap(security_headers())
                .wrap(from_fn(record_request))
                .wrap(from_fn(crate::deadline::body_deadlines))
                .app_data(deadlines.clone())
                .app_data(readiness.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(query_config)
                .app_data(path_config)
                .app_data(json_config);
            if let Some(limit) = body_limit {
                app = app.app_data(PayloadConfig::new(limit));
            }
            app.configure(crate::health::configure)
                .configure(routes.clone())
                .default_service(to(not_found))
        })
        .on_connect(move |connection, data| clients.on_connect(connection, data))
        .disable_signals()
        .shutdown_timeout(grace.as_secs().max(1))
        .workers(self.settings.worker_count())
        .max_connections(self.settings.connections_per_worker())
        .listen(listener)?;
        let server = self
            .extra_listeners
            .into_iter()
            .try_fold(server, |server, listener| server.listen(listener))?
            .run();
        Ok(HttpService {
            port,
            server,
            grace,
            background: self.background,
        })
    }
}
