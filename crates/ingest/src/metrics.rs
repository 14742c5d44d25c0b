//! What ingest reports on `/metrics`, beside the shared HTTP request metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Ingest's own metrics. Clones share the same series.
#[derive(Clone)]
pub struct IngestMetrics {
    /// Events that passed validation and were handed to the writer.
    pub events_accepted: Counter,
    /// Events refused one by one (bad field, too old, ...).
    pub events_rejected: Counter,
    /// Events committed to PostgreSQL.
    pub events_committed: Counter,
    /// Accepted events stamped more than 10 minutes before they arrived (the detector's
    /// default `detection.lateness`): a running detector never judges them.
    pub events_delayed: Counter,
    /// Events acknowledged with 202 (buffered mode) that could not be stored.
    pub events_lost: Counter,
    /// Requests refused because the queue stayed full for `enqueue_timeout`.
    pub overloaded: Counter,
    /// Write attempts that failed because the database was unavailable.
    pub writer_retries: Counter,
    /// Batches sent again after a lost answer that turned out to be committed already.
    pub batches_already_stored: Counter,
    /// Requests answered from their stored `Idempotency-Key` (sent again, not stored again).
    pub requests_repeated: Counter,
    /// Requests refused (422) because their `Idempotency-Key` was stored for another request.
    pub keys_reused: Counter,
    /// Events waiting in the queue or in a batch being written.
    pub queued_events: Gauge,
    /// Bytes waiting in the queue or in a batch being written.
    pub queued_bytes: Gauge,
    /// Events per committed batch.
    pub batch_events: Histogram,
    /// Requests per committed batch.
    pub batch_requests: Histogram,
    /// Time to write and commit one batch.
    pub flush_seconds: Histogram,
}

impl IngestMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> IngestMetrics {
        let metrics = IngestMetrics {
            events_accepted: Counter::default(),
            events_rejected: Counter::default(),
            events_committed: Counter::default(),
            events_delayed: Counter::default(),
            events_lost: Counter::default(),
            overloaded: Counter::default(),
            writer_retries: Counter::default(),
            batches_already_stored: Counter::default(),
            requests_repeated: Counter::default(),
            keys_reused: Counter::default(),
            queued_events: Gauge::default(),
            queued_bytes: Gauge::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            batch_requests: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            flush_seconds: runtime::metrics::latency_histogram(),
        };
        let ingest = registry.sub_registry_with_prefix("ingest");
        ingest.register(
            "events_accepted",
            "Events accepted for storage",
            metrics.events_accepted.clone(),
        );
        ingest.register(
            "events_rejected",
            "Events rejected by validation",
            metrics.events_rejected.clone(),
        );
        ingest.register(
            "events_committed",
            "Events committed to PostgreSQL",
            metrics.events_committed.clone(),
        );
        ingest.register(
            "events_delayed",
            "Accepted events stamped more than 10 minutes before they arrived (later than the detector's default lateness window)",
            metrics.events_delayed.clone(),
        );
        ingest.register(
            "events_lost",
            "Buffered-mode events acknowledged but not stored",
            metrics.events_lost.clone(),
        );
        ingest.register(
            "requests_overloaded",
            "Requests refused because the queue was full",
            metrics.overloaded.clone(),
        );
        ingest.register(
            "writer_retries",
            "Batch write attempts that found the database unavailable",
            metrics.writer_retries.clone(),
        );
        ingest.register(
            "batches_already_stored",
            "Batches sent again after a lost commit answer that were already committed (not written twice)",
            metrics.batches_already_stored.clone(),
        );
        ingest.register(
            "requests_repeated",
            "Requests answered from their stored Idempotency-Key instead of being stored again",
            metrics.requests_repeated.clone(),
        );
        ingest.register(
            "idempotency_keys_reused",
            "Requests refused because their Idempotency-Key was stored for a different request",
            metrics.keys_reused.clone(),
        );
        ingest.register(
            "queue_events",
            "Events queued or being written",
            metrics.queued_events.clone(),
        );
        ingest.register(
            "queue_bytes",
            "Bytes queued or being written",
            metrics.queued_bytes.clone(),
        );
        ingest.register(
            "batch_events",
            "Events per committed batch",
            metrics.batch_events.clone(),
        );
        ingest.register(
            "batch_requests",
            "Requests per committed batch",
            metrics.batch_requests.clone(),
        );
        ingest.register(
            "flush_duration_seconds",
            "Time to write and commit one batch",
            metrics.flush_seconds.clone(),
        );
        metrics
    }
}
