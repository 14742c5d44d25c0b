//! `threesigma-detector`: watches every service's per-minute error counts and opens,
//! updates and resolves incidents. Reads only the `log_counts` rollups, never the logs.
//! Any number of copies may run against one database.
//!
//! # Layout
//! - [`settings`]: loop and detection settings.
//! - [`live`]: [`Detector`], one evaluation cycle against PostgreSQL.
//! - [`replay`]: detection over a CSV of counts, without a database.
//! - [`notify`]: webhook notifications of incident transitions.
//! - [`metrics`]: the detector's Prometheus metrics.
//! - [`startup`]: [`Application`], the loop, housekeeping and the health server.

pub mod live;
pub mod metrics;
pub mod notify;
pub mod replay;
pub mod settings;
pub mod startup;

pub use live::Detector;
pub use settings::Settings;
pub use startup::Application;
