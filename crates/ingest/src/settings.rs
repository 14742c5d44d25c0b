//! Ingest settings: defaults here, then the config file, env and flags (see
//! `runtime::settings`).

use std::time::Duration;

use access::RateLimitSettings;
use auth::AuthSettings;
use runtime::settings::{duration, require_nonzero};
use runtime::{DatabaseSettings, Layered, ServerSettings, SettingsError};
use serde::{Deserialize, Serialize};

pub use store::bulk::BulkMethod;

use crate::batch::BatchConfig;
use crate::formats::ShipperSettings;

/// When a request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// 200 once the events are committed in PostgreSQL (default).
    Durable,
    /// 202 once the events are queued: lower latency, but events queued when the process
    /// dies are lost. Opt-in.
    Buffered,
}

/// Everything `threesigma-ingest` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub ingest: IngestSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
}

impl Layered for Settings {
    const LIST_KEYS: &'static [&'static str] = &[
        "server.cors_origins",
        "rate_limit.trusted_proxies",
        "ingest.loki_service_labels",
        "ingest.bulk_service_fields",
    ];
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::with_bind("0.0.0.0:8080"),
            database: DatabaseSettings::with_pool_size(4),
            ingest: IngestSettings::default(),
            auth: AuthSettings::default(),
            // Per token: generous, a shipper sends batches; a runaway one is held back.
            rate_limit: RateLimitSettings::with_rate(5_000, 10_000),
        }
    }
}

/// Request handling, batching and queue bounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestSettings {
    /// `durable` (200 after commit) or `buffered` (202 after queueing).
    pub ack: AckMode,
    /// Largest request body, in bytes, after decompression.
    pub max_body_bytes: usize,
    /// A batch closes at this many events...
    pub max_batch_events: usize,
    /// ... or this many bytes ...
    pub max_batch_bytes: usize,
    /// ... or this long after its first event arrived.
    #[serde(with = "duration")]
    pub linger: Duration,
    /// Concurrent batch writers, one PostgreSQL connection each.
    pub writers: usize,
    /// How log rows are written: `unnest` (one INSERT ... SELECT FROM unnest statement with
    /// the rollups, one round trip) or `copy` (binary COPY, then the rollups, in a transaction).
    pub bulk_method: BulkMethod,
    /// Request bodies being read or decoded, in bytes, across all requests; beyond it
    /// requests wait up to `enqueue_timeout`, then get 503.
    pub max_inflight_bytes: usize,
    /// Requests that may wait for in-flight room at once; more are refused (503) at once.
    pub max_waiting_requests: usize,
    /// Queue bound in events (queued plus being written).
    pub queue_max_events: usize,
    /// Queue bound in bytes (queued plus being written).
    pub queue_max_bytes: usize,
    /// How long a request waits for queue space before a 503.
    #[serde(with = "duration")]
    pub enqueue_timeout: Duration,
    /// How long a request waits for its commit (database down: retries until then) before a 503.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Longest single write attempt before its connection is abandoned.
    #[serde(with = "duration")]
    pub attempt_timeout: Duration,
    /// First pause between write retries; doubles up to `retry_max`.
    #[serde(with = "duration")]
    pub retry_min: Duration,
    #[serde(with = "duration")]
    pub retry_max: Duration,
    /// How much longer a request waits when the outcome of its batch's commit is unknown
    /// (the database went away mid-write), for the writer to find out rather than answer
    /// 503 for events that may be stored: long enough for a failover.
    #[serde(with = "duration")]
    pub in_doubt_timeout: Duration,
    /// Most per-event errors listed in a response, at most 1,000 (the `rejected` count is
    /// always complete).
    pub max_reported_errors: usize,
    /// Longest message, in bytes.
    pub max_message_bytes: usize,
    /// Largest attributes object, in bytes of JSON.
    pub max_attributes_bytes: usize,
    /// Oldest accepted event time, relative to now.
    #[serde(with = "duration")]
    pub max_event_age: Duration,
    /// Furthest accepted event time into the future (clock skew).
    #[serde(with = "duration")]
    pub max_future_skew: Duration,
    /// Store each event's search terms (its words and attribute pairs) for word and
    /// attribute search. `false` saves their cost at ingest; events written meanwhile are
    /// then found by substring search only.
    pub search_terms: bool,
    /// How often the search indexer builds the term index of closed blocks (until then a
    /// search reads those blocks in full: slower, never incomplete).
    #[serde(with = "duration")]
    pub search_index_every: Duration,
    /// A second listener (`HOST:PORT`) serving only OTLP/HTTP `POST /v1/logs`, so
    /// exporters' default `http://host:4318/v1/logs` works unchanged; empty: none (OTLP is
    /// still served on the main port).
    pub otlp_bind: String,
    /// Loki push: stream labels naming the service, first present wins.
    pub loki_service_labels: Vec<String>,
    /// Elasticsearch bulk: document fields (dotted paths) naming the service, tried after
    /// `service` and `service.name`; else the index name.
    pub bulk_service_fields: Vec<String>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            ack: AckMode::Durable,
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_events: 5_000,
            max_batch_bytes: 4 * 1024 * 1024,
            linger: Duration::from_millis(10),
            writers: 2,
            bulk_method: BulkMethod::Unnest,
            max_inflight_bytes: 16 * 1024 * 1024,
            max_waiting_requests: 256,
            queue_max_events: 50_000,
            queue_max_bytes: 16 * 1024 * 1024,
            enqueue_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(10),
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            in_doubt_timeout: Duration::from_secs(30),
            max_reported_errors: 100,
            max_message_bytes: 64 * 1024,
            max_attributes_bytes: 64 * 1024,
            max_event_age: Duration::from_secs(7 * 86_400),
            max_future_skew: Duration::from_secs(600),
            search_terms: true,
            search_index_every: Duration::from_secs(5),
            otlp_bind: String::new(),
            loki_service_labels: ShipperSettings::default().loki_service_labels,
            bulk_service_fields: ShipperSettings::default().bulk_service_fields,
        }
    }
}

impl Settings {
    /// How events are found in the shippers' protocols.
    pub fn shippers(&self) -> ShipperSettings {
        ShipperSettings {
            loki_service_labels: self.ingest.loki_service_labels.clone(),
            bulk_service_fields: self.ingest.bulk_service_fields.clone(),
        }
    }

    /// Refuses unusable values with a message naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.database.validate()?;
        self.server.validate()?;
        self.auth.verifier()?;
        let _ = self.rate_limit.general()?;
        let ingest = &self.ingest;
        require_nonzero("ingest.max_body_bytes", ingest.max_body_bytes)?;
        require_nonzero("ingest.max_batch_events", ingest.max_batch_events)?;
        require_nonzero("ingest.max_batch_bytes", ingest.max_batch_bytes)?;
        if ingest.search_index_every.is_zero() {
            return Err(SettingsError::invalid(
                "ingest.search_index_every",
                "must be more than 0",
            ));
        }
        require_nonzero("ingest.linger", ingest.linger)?;
        require_nonzero("ingest.writers", ingest.writers)?;
        require_nonzero("ingest.max_inflight_bytes", ingest.max_inflight_bytes)?;
        require_nonzero("ingest.max_waiting_requests", ingest.max_waiting_requests)?;
        if ingest.max_reported_errors > crate::formats::MAX_KEPT_REJECTIONS {
            return Err(SettingsError::invalid(
                "ingest.max_reported_errors",
                format!("must be at most {}", crate::formats::MAX_KEPT_REJECTIONS),
            ));
        }
        require_nonzero("ingest.queue_max_events", ingest.queue_max_events)?;
        require_nonzero("ingest.queue_max_bytes", ingest.queue_max_bytes)?;
        require_nonzero("ingest.enqueue_timeout", ingest.enqueue_timeout)?;
        require_nonzero("ingest.request_timeout", ingest.request_timeout)?;
        require_nonzero("ingest.attempt_timeout", ingest.attempt_timeout)?;
        require_nonzero("ingest.retry_min", ingest.retry_min)?;
        require_nonzero("ingest.max_message_bytes", ingest.max_message_bytes)?;
        require_nonzero("ingest.max_attributes_bytes", ingest.max_attributes_bytes)?;
        require_nonzero("ingest.max_event_age", ingest.max_event_age)?;
        if ingest.loki_service_labels.is_empty() {
            return Err(SettingsError::invalid(
                "ingest.loki_service_labels",
                "list at least one label",
            ));
        }
        if ingest.retry_max < ingest.retry_min {
            return Err(SettingsError::invalid(
                "ingest.retry_max",
                "must not be below ingest.retry_min",
            ));
        }
        if i16::try_from(ingest.writers).is_err() {
            return Err(SettingsError::invalid(
                "ingest.writers",
                "must be at most 32767",
            ));
        }
        Ok(())
    }

    /// The batch writer's view of these settings.
    pub fn batch(&self) -> BatchConfig {
        let ingest = &self.ingest;
        BatchConfig {
            max_batch_events: ingest.max_batch_events,
            max_batch_bytes: ingest.max_batch_bytes,
            linger: ingest.linger,
            writers: ingest.writers,
            queue_max_events: ingest.queue_max_events,
            queue_max_bytes: ingest.queue_max_bytes,
            enqueue_timeout: ingest.enqueue_timeout,
            request_timeout: ingest.request_timeout,
            attempt_timeout: ingest.attempt_timeout,
            retry_min: ingest.retry_min,
            retry_max: ingest.retry_max,
            in_doubt_timeout: ingest.in_doubt_timeout,
            bulk_method: ingest.bulk_method,
        }
    }

    /// The per-event limits of the domain.
    pub fn event_limits(&self) -> domain::EventLimits {
        let ingest = &self.ingest;
        let to_chrono =
            |value: Duration| chrono::Duration::from_std(value).unwrap_or(chrono::Duration::MAX);
        domain::EventLimits {
            max_message_bytes: ingest.max_message_bytes,
            max_attributes_bytes: ingest.max_attributes_bytes,
            max_age: to_chrono(ingest.max_event_age),
            max_future: to_chrono(ingest.max_future_skew),
            search_terms: ingest.search_terms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Settings {
        let mut settings = Settings::default();
        settings.database.url = "postgres://localhost/x".into();
        settings.auth.secret = "0123456789abcdef0123456789abcdef".into();
        settings
    }

    #[test]
    fn defaults_are_valid_once_a_database_is_given() {
        assert!(valid().validate().is_ok());
        let error = Settings::default().validate().unwrap_err().to_string();
        assert!(error.contains("database.url"), "{error}");
    }

    #[test]
    fn zero_knobs_are_refused_by_name() {
        type Breaker = fn(&mut IngestSettings);
        let cases: [(&str, Breaker); 6] = [
            ("ingest.writers", |i| i.writers = 0),
            ("ingest.max_batch_events", |i| i.max_batch_events = 0),
            ("ingest.linger", |i| i.linger = Duration::ZERO),
            ("ingest.queue_max_bytes", |i| i.queue_max_bytes = 0),
            ("ingest.enqueue_timeout", |i| {
                i.enqueue_timeout = Duration::ZERO
            }),
            ("ingest.max_waiting_requests", |i| {
                i.max_waiting_requests = 0
            }),
        ];
        for (name, break_it) in cases {
            let mut settings = valid();
            break_it(&mut settings.ingest);
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(name), "{name}: {error}");
        }
    }
}
