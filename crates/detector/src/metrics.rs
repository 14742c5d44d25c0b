//! What the detector reports on `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The detector's metrics. Clones share the same series.
#[derive(Clone)]
pub struct DetectorMetrics {
    /// Service evaluations (one per service per cycle).
    pub evaluations: Counter,
    /// Incidents opened or reopened by this process.
    pub opened: Counter,
    /// Incidents resolved by this process.
    pub resolved: Counter,
    /// Cycles that failed (database unavailable, ...).
    pub failed_cycles: Counter,
    /// Duration of one evaluation cycle.
    pub cycle_seconds: Histogram,
    /// Unix time of the last successful cycle.
    pub last_success: Gauge,
    /// Service buckets this replica holds (when replicas share the work).
    pub buckets_held: Gauge,
    /// Complete minutes judged (once when they complete, again when late data changes
    /// them), and those left unjudged although history before them was known (always 0: a
    /// baseline falls back rather than skip a minute; a non-zero value is a bug to report).
    pub minutes_judged: Counter,
    pub minutes_unjudged: Counter,
    /// Minutes judged again because data for them arrived late, within the lateness window
    /// (data later than that is never read by a running detector: ingest's
    /// `events_delayed` counts it).
    pub late_minutes: Counter,
    /// Baselines that reached back past `baseline` for usable minutes, and those that had to
    /// take anomalous minutes (too few others within the look-back).
    pub baseline_lookbacks: Counter,
    pub baseline_unfiltered: Counter,
    /// Service profiles learned (services with at least six hours of history; others keep
    /// the configured dispersion).
    pub profiles_learned: Counter,
    /// Webhook notifications delivered, given up, retried, and dropped (queue full).
    pub webhook_delivered: Counter,
    pub webhook_failed: Counter,
    pub webhook_retries: Counter,
    pub webhook_dropped: Counter,
    /// Incident explanations stored (or found stored by another replica), those that
    /// failed (retried on the next tick), and how long each took.
    pub explanations: Counter,
    pub explanations_failed: Counter,
    pub explain_seconds: Histogram,
}

impl DetectorMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> DetectorMetrics {
        let metrics = DetectorMetrics {
            evaluations: Counter::default(),
            opened: Counter::default(),
            resolved: Counter::default(),
            failed_cycles: Counter::default(),
            cycle_seconds: runtime::metrics::latency_histogram(),
            last_success: Gauge::default(),
            buckets_held: Gauge::default(),
            minutes_judged: Counter::default(),
            minutes_unjudged: Counter::default(),
            late_minutes: Counter::default(),
            baseline_lookbacks: Counter::default(),
            baseline_unfiltered: Counter::default(),
            profiles_learned: Counter::default(),
            webhook_delivered: Counter::default(),
            webhook_failed: Counter::default(),
            webhook_retries: Counter::default(),
            webhook_dropped: Counter::default(),
            explanations: Counter::default(),
            explanations_failed: Counter::default(),
            explain_seconds: runtime::metrics::latency_histogram(),
        };
        let detector = registry.sub_registry_with_prefix("detector");
        detector.register(
            "evaluations",
            "Service evaluations",
            metrics.evaluations.clone(),
        );
        detector.register(
            "incidents_opened",
            "Incidents opened or reopened",
            metrics.opened.clone(),
        );
        detector.register(
            "incidents_resolved",
            "Incidents resolved",
            metrics.resolved.clone(),
        );
        detector.register(
            "failed_cycles",
            "Evaluation cycles that failed",
            metrics.failed_cycles.clone(),
        );
        detector.register(
            "cycle_duration_seconds",
            "Duration of one evaluation cycle",
            metrics.cycle_seconds.clone(),
        );
        detector.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful cycle",
            metrics.last_success.clone(),
        );
        detector.register(
            "explain_duration_seconds",
            "Duration of one incident explanation (two samples and their comparison)",
            metrics.explain_seconds.clone(),
        );
        detector.register(
            "buckets_held",
            "Service buckets this replica evaluates",
            metrics.buckets_held.clone(),
        );
        for (name, help, counter) in [
            (
                "minutes_judged",
                "Complete service minutes judged (again when late data changed them)",
                &metrics.minutes_judged,
            ),
            (
                "minutes_unjudged",
                "Complete service minutes left unjudged although history before them was known (always 0 unless a bug)",
                &metrics.minutes_unjudged,
            ),
            (
                "late_minutes",
                "Minutes judged again because data for them arrived within the lateness window",
                &metrics.late_minutes,
            ),
            (
                "baseline_lookbacks",
                "Baselines that reached back past detection.baseline because anomalous minutes left too few",
                &metrics.baseline_lookbacks,
            ),
            (
                "baseline_unfiltered",
                "Baselines that took anomalous minutes: too few others within detection.baseline_lookback",
                &metrics.baseline_unfiltered,
            ),
            (
                "explanations",
                "Incident explanations computed (one per incident stage: opened, escalated, reopened)",
                &metrics.explanations,
            ),
            (
                "explanations_failed",
                "Incident explanations that failed (retried on the next cycle)",
                &metrics.explanations_failed,
            ),
            (
                "profiles_learned",
                "Service profiles learned from the last day (dispersion of errors and of the error ratio)",
                &metrics.profiles_learned,
            ),
        ] {
            detector.register(name, help, counter.clone());
        }
        detector.register(
            "webhook_delivered",
            "Webhook notifications delivered",
            metrics.webhook_delivered.clone(),
        );
        detector.register(
            "webhook_failed",
            "Webhook notifications given up",
            metrics.webhook_failed.clone(),
        );
        detector.register(
            "webhook_retries",
            "Webhook delivery attempts that failed",
            metrics.webhook_retries.clone(),
        );
        detector.register(
            "webhook_dropped",
            "Webhook notifications dropped because the queue was full",
            metrics.webhook_dropped.clone(),
        );
        metrics
    }
}
