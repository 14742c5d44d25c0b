//! Building and running the detector: the evaluation loop, housekeeping, and a small HTTP
//! server for `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use actix_web::web::{Data, to};
use actix_web::{App, HttpServer, middleware};
use anyhow::Context;
use chrono::Utc;
use prometheus_client::registry::Registry;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::live::{Detector, Share};
use crate::metrics::DetectorMetrics;
use crate::notify::Notifier;
use crate::settings::Settings;
use store::leases::BucketLeases;

/// How often partitions are checked.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// A built detector, not yet running.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    detector: Detector,
    pool: store::DbPool,
    settings: Settings,
    last_success: Arc<AtomicI64>,
    /// Delivers webhook notifications; finishes once the detector (its sender) is gone.
    notifier_task: Option<tokio::task::JoinHandle<()>>,
}

/// Ready when the database answers and the last cycle succeeded recently.
struct DetectorReadiness {
    pool: store::DbPool,
    last_success: Arc<AtomicI64>,
    interval: Duration,
}

impl web::health::Readiness for DetectorReadiness {
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Vec<String>>> + Send + '_>>
    {
        Box::pin(async move {
            let mut reasons = Vec::new();
            if let Err(error) = store::pool::ping(&self.pool).await {
                reasons.push(format!("database: {error}"));
            }
            let last = self.last_success.load(Ordering::Relaxed);
            let stale = i64::try_from(self.interval.as_secs() * 3 + 30).unwrap_or(i64::MAX);
            if last > 0 && Utc::now().timestamp() - last > stale {
                reasons.push("detector: no successful cycle recently".to_owned());
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
    /// Validates settings, checks the schema and binds the health listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let config = settings.validate()?;
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
            &settings.database.pool("threesigma-detector"),
        )?;

        let mut registry = Registry::with_prefix("threesigma");
        let http_metrics = Data::new(web::metrics::HttpMetrics::register(&mut registry));
        let metrics = DetectorMetrics::register(&mut registry);
        let share = match settings.scope() {
            Some(services) => Share::Services(services),
            None => {
                let leases = store::pool::connection_config(
                    &settings.database.url,
                    &settings.database.pool("threesigma-detector-leases"),
                )?;
                let buckets = i32::try_from(settings.detector.buckets).unwrap_or(i32::MAX);
                Share::Buckets(Arc::new(tokio::sync::Mutex::new(BucketLeases::new(
                    leases, buckets,
                ))))
            }
        };
        let notifier = Notifier::start(&settings.webhook, metrics.clone())?;
        let (notifier, notifier_task) = match notifier {
            Some((notifier, task)) => (Some(notifier), Some(task)),
            None => (None, None),
        };
        let detector = Detector::new(pool.clone(), config, share, metrics, notifier);
        let last_success = Arc::new(AtomicI64::new(0));
        let readiness = Data::new(web::health::ReadinessCheck(Arc::new(DetectorReadiness {
            pool: pool.clone(),
            last_success: Arc::clone(&last_success),
            interval: settings.detector.interval,
        })));
        let registry = Data::new(web::metrics::MetricsRegistry(Arc::new(registry)));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(web::metrics::record_request))
                .app_data(readiness.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .configure(web::health::configure)
                .default_service(to(web::error::not_found))
        })
        .disable_signals()
        .workers(1)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            detector,
            pool,
            settings,
            last_success,
            notifier_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The detector itself, for single evaluations (`once`, tests).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Evaluates every `interval` until `shutdown` is cancelled.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(
            port = self.port,
            interval = ?self.settings.detector.interval,
            scope = ?self.settings.scope(),
            "Detector is running."
        );
        let grace = self.settings.server.shutdown_grace;
        let server = web::server::run_until(self.server, shutdown.clone(), grace);
        let evaluation = run_loop(
            &self.detector,
            &self.pool,
            &self.settings,
            &self.last_success,
            shutdown,
        );
        let (served, ()) = tokio::join!(server, evaluation);
        served?;
        // Let queued notifications go out (the notifier's sender goes with the detector).
        drop(self.detector);
        if let Some(task) = self.notifier_task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("Undelivered webhook notifications dropped at shutdown.");
        }
        tracing::info!("Detector stopped.");
        Ok(())
    }
}

async fn run_loop(
    detector: &Detector,
    pool: &store::DbPool,
    settings: &Settings,
    last_success: &AtomicI64,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(settings.detector.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_maintenance = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        if Instant::now() >= next_maintenance {
            maintain(pool, settings).await;
            next_maintenance = Instant::now() + MAINTENANCE_EVERY;
        }
        let now = Utc::now();
        match detector.tick(now).await {
            Ok(report) => {
                last_success.store(now.timestamp(), Ordering::Relaxed);
                tracing::debug!(
                    services = report.services,
                    opened = report.opened,
                    resolved = report.resolved,
                    "Evaluation cycle done."
                );
            }
            Err(error) => {
                tracing::warn!(%error, "Evaluation cycle failed; retrying next interval.")
            }
        }
    }
}

/// Keeps log partitions ready ahead, drops those past retention and prunes old rollups;
/// with several detectors, whichever gets the maintenance advisory lock does it.
pub async fn maintain(pool: &store::DbPool, settings: &Settings) {
    let result = async {
        let mut conn = store::pool::connection(pool).await?;
        store::partitions::maintain(
            &mut conn,
            settings.detector.partition_days_ahead,
            settings.detector.retention_days,
        )
        .await
    }
    .await;
    match result {
        Ok(Some(done))
            if done.created > 0 || !done.dropped.is_empty() || done.pruned_counts > 0 =>
        {
            tracing::info!(
                created = done.created,
                dropped = ?done.dropped,
                pruned_counts = done.pruned_counts,
                "Log partitions maintained."
            );
        }
        Ok(Some(_)) => {}
        Ok(None) => tracing::debug!("Another detector is maintaining partitions."),
        Err(error) => tracing::warn!(%error, "Partition maintenance failed; will retry."),
    }
}
