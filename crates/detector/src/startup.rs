//! Building and running the detector: the evaluation loop, housekeeping, and a small HTTP
//! server for `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use runtime::Readiness;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use web::HttpService;

use crate::live::{Detector, Share};
use crate::metrics::DetectorMetrics;
use crate::notify::Notifier;
use crate::settings::Settings;
use store::leases::BucketLeases;

/// How often partitions are checked.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// A built detector, not yet running.
pub struct Application {
    http: HttpService,
    detector: Detector,
    pool: store::DbPool,
    settings: Settings,
    last_success: Arc<AtomicI64>,
    /// Delivers webhook notifications; finishes once the detector (its sender) is gone.
    notifier_task: Option<tokio::task::JoinHandle<()>>,
}

/// Ready when the database answers and the last cycle succeeded recently.
fn readiness(pool: store::DbPool, last_success: Arc<AtomicI64>, interval: Duration) -> Readiness {
    let stale = i64::try_from(interval.as_secs() * 3 + 30).unwrap_or(i64::MAX);
    Readiness::new()
        .database("database", pool)
        .condition(move || {
            let last = last_success.load(Ordering::Relaxed);
            if last > 0 && Utc::now().timestamp() - last > stale {
                Err("detector: no successful cycle recently".to_owned())
            } else {
                Ok(())
            }
        })
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
        let listener = settings.server.bind()?;
        let pool = settings.database.build_pool("threesigma-detector")?;

        let mut registry = runtime::metrics::registry();
        let metrics = DetectorMetrics::register(&mut registry);
        let share = match settings.scope() {
            Some(services) => Share::Services(services),
            None => {
                let leases = settings
                    .database
                    .connection_config("threesigma-detector-leases")?;
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
        let detector = Detector::new(pool.clone(), config, share, metrics, notifier)
            .with_explanations(settings.explain.clone());
        let last_success = Arc::new(AtomicI64::new(0));
        let http = HttpService::builder(
            &settings.server,
            registry,
            readiness(
                pool.clone(),
                Arc::clone(&last_success),
                settings.detector.interval,
            ),
        )
        .serve(listener, |_: &mut actix_web::web::ServiceConfig| {})?;
        Ok(Application {
            http,
            detector,
            pool,
            settings,
            last_success,
            notifier_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The detector itself, for single evaluations (`once`, tests).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Evaluates every `interval` until `shutdown` is cancelled.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(
            port = self.port(),
            interval = ?self.settings.detector.interval,
            scope = ?self.settings.scope(),
            "Detector is running."
        );
        let grace = self.settings.server.shutdown_grace;
        let server = self.http.run_until(shutdown.clone());
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
            if done.created > 0
                || !done.dropped.is_empty()
                || done.pruned_counts > 0
                || done.pruned_search > 0
                || done.pruned_idempotency_keys > 0 =>
        {
            tracing::info!(
                created = done.created,
                dropped = ?done.dropped,
                pruned_counts = done.pruned_counts,
                pruned_search = done.pruned_search,
                pruned_idempotency_keys = done.pruned_idempotency_keys,
                "Log partitions maintained."
            );
        }
        Ok(Some(_)) => {}
        Ok(None) => tracing::debug!("Another detector is maintaining partitions."),
        Err(error) => tracing::warn!(%error, "Partition maintenance failed; will retry."),
    }
}
