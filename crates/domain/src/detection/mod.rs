//! Detection: baselines over zero-filled minute buckets, the per-bucket test, the incident
//! lifecycle as a pure state machine, and the evaluation of every signal of one service.
//!
//! The live detector and `threesigma-detector replay` both call [`evaluate_service`], which
//! runs [`evaluate`] for each signal; they differ only in where the counts come from
//! (PostgreSQL rollups or a CSV file) and where the resulting [`Decision`]s go (SQL or a
//! JSON line).
//!
//! # Layout
//! - [`config`]: [`Algorithm`], [`DetectionConfig`] and its validation ([`ConfigError`]).
//! - [`series`]: [`MinuteSeries`], one service's zero-filled per-minute counts, and
//!   [`Anomalies`], the minutes kept out of baselines.
//! - [`book`]: [`ServiceBook`], what has been judged of a service's complete minutes: each
//!   minute once when it completes and again when late data changes it; which were
//!   anomalous.
//! - [`baseline`]: [`Baseline`] (and how far it [`Reach`]ed) and its statistics: the predictive distribution, dispersion,
//!   [`z_score`] and [`negative_binomial_tail`].
//! - [`assessment`]: [`Assessment`], the verdict on one bucket or window: the classic rule
//!   and the count test ([`assess`]), and the error-ratio test.
//! - [`lifecycle`]: [`evaluate`], the incident state machine of one service and signal
//!   ([`ActiveIncident`], [`Evaluation`], [`Transition`]).
//! - [`profile`]: [`Profile`], a service's long-run dispersion, the floor of its predictive
//!   variance.
//! - [`rhythm`]: [`Rhythm`], a service's daily rhythm, which raises the expectation of a
//!   recent baseline when the time of day says errors climb.
//! - [`service`]: [`evaluate_service`], every signal of one service from its
//!   [`IncidentSnapshot`]s to [`Decision`]s, with the rule that one burst pages once; and
//!   [`title`].

pub mod assessment;
pub mod baseline;
pub mod book;
pub mod config;
pub mod lifecycle;
pub mod profile;
pub mod rhythm;
pub mod series;
pub mod service;

pub use assessment::{Assessment, assess, threshold};
pub use baseline::{Baseline, Reach, SIGMA_ZERO_Z, negative_binomial_tail, z_score};
pub use book::{MinuteStatus, Refresh, ServiceBook, TracedMinute, TracedVerdict, trace};
pub use config::{Algorithm, ConfigError, DetectionConfig};
pub use lifecycle::{ActiveIncident, Evaluation, Transition, evaluate};
pub use profile::Profile;
pub use rhythm::{Quarter, Rhythm};
pub use series::{Anomalies, MinuteSeries};
pub use service::{Decision, IncidentSnapshot, ServiceInput, evaluate_service, title};
