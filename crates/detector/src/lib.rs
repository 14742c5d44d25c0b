//! `threesigma-detector`: watches every service's per-minute error counts and opens,
//! updates and resolves incidents. Detection reads only the `log_counts` rollups; once an
//! incident opens or escalates, bounded samples of its service's ERROR+ lines explain it.
//! Any number of copies may run against one database.
//!
//! # Layout
//! - [`settings`]: loop and detection settings.
//! - [`live`]: [`Detector`], one evaluation cycle against PostgreSQL.
//! - [`replay`]: detection over a CSV of counts, without a database.
//! - [`explain`]: explanations of incidents (templates and attribute values that changed).
//! - [`notify`]: webhook notifications of incident transitions.
//! - [`metrics`]: the detector's Prometheus metrics.
//! - [`startup`]: [`Application`], the loop, housekeeping and the health server.

pub mod explain;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod replay;
pub mod settings;
pub mod startup;

pub use live::Detector;
pub use settings::Settings;
pub use startup::Application;
