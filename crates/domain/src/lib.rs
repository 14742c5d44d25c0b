//! threesigma's pure domain: what a log event is, how levels and service names are parsed,
//! what an incident is, and the detection maths. No I/O, no async, no database: everything
//! here is a function of its arguments, which is why it is property-tested and why the live
//! detector and `replay` can share it.
//!
//! # Layout
//! - [`level`]: [`Level`], with every spelling shippers use and syslog numbers.
//! - [`service`]: [`ServiceName`], validated.
//! - [`time`]: event timestamps (RFC 3339, epoch s/ms/µs/ns) and [`Minute`] buckets.
//! - [`event`]: [`LogEvent`] parsing from JSON with field aliases, and its limits.
//! - [`incident`]: signals, statuses, severities, timeline kinds.
//! - [`search`]: the words and attribute terms of an event, and the log search language.
//! - [`patterns`]: message templates ([`patterns::Miner`]) and what changed in an incident.
//! - [`detection`]: baselines, the per-bucket test, the incident lifecycle and the evaluation
//!   of every signal of one service.

pub mod detection;
pub mod event;
pub mod incident;
pub mod level;
pub mod patterns;
pub mod search;
pub mod service;
pub mod time;

pub use detection::{
    ActiveIncident, Algorithm, Assessment, Baseline, DetectionConfig, Evaluation, MinuteSeries,
    Transition, evaluate,
};
pub use event::{EventError, EventLimits, LogEvent, strip_nul};
pub use incident::{EventKind, Named, Severity, Signal, Status, UnknownName};
pub use level::Level;
pub use service::ServiceName;
pub use time::Minute;
