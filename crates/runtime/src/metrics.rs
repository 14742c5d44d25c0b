//! The Prometheus registry of a running service: one per service (so several services, or
//! several test instances, in one process never share counters), and its text exposition.

use std::sync::Arc;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The registry a service exposes on `/metrics`.
#[derive(Clone)]
pub struct MetricsRegistry(Arc<Registry>);

impl MetricsRegistry {
    /// Freezes `registry`: every metric is registered before the service starts.
    pub fn new(registry: Registry) -> MetricsRegistry {
        MetricsRegistry(Arc::new(registry))
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &self.0)?;
        Ok(body)
    }
}

/// A new registry with threesigma's metric name prefix.
pub fn registry() -> Registry {
    Registry::with_prefix("threesigma")
}

/// Latency buckets from 0.5 ms to ~16 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}
