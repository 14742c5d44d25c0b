//! `threesigma-ingest`: accepts logs over HTTP and stores them in PostgreSQL. A 200 means
//! the events are committed.
//!
//! # Layout
//! - [`settings`]: every knob, with defaults and validation.
//! - [`pipeline`]: the accept pipeline every wire format shares (admission, body, decoding,
//!   submission, answer) and the state handlers share.
//! - [`body`]: the in-flight byte budget, reading a body under its limits, content
//!   encodings and bounded decompression.
//! - [`formats`]: the wire formats ([`formats::WireFormat`]): how a body decodes into
//!   events and how its answers look; [`formats::native`] is threesigma's own JSON/NDJSON.
//! - [`batch`]: the group-commit batch writer (bounded queue, writer tasks, retries).
//! - [`indexer`]: the background task that builds the search index of closed blocks.
//! - [`metrics`]: ingest's Prometheus metrics.
//! - [`startup`]: [`Application`], building and running the service, and the routes.

pub mod batch;
pub mod body;
pub mod formats;
pub mod indexer;
pub mod metrics;
pub mod pipeline;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::Application;
