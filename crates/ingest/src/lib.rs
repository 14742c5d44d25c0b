//! `threesigma-ingest`: accepts logs over HTTP and stores them in PostgreSQL. A 200 means
//! the events are committed.
//!
//! # Layout
//! - [`settings`]: every knob, with defaults and validation.
//! - [`decode`]: content encodings, body shapes, per-event validation.
//! - [`batch`]: the group-commit batch writer (bounded queue, writer tasks, retries).
//! - [`routes`]: the HTTP handlers.
//! - [`metrics`]: ingest's Prometheus metrics.
//! - [`startup`]: [`Application`], building and running the service.

pub mod batch;
pub mod decode;
pub mod metrics;
pub mod routes;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::Application;
