//! What every threesigma process shares, whether it serves HTTP or not: the services, the
//! detector and the CLI. No actix, no JWT: those live in `web`, `access` and `auth`.
//!
//! # Layout
//! - [`settings`]: layered settings (defaults → file → env → flags), human durations, the
//!   settings listing of `--help`.
//! - [`secret`]: [`Secret`], settings that `Debug` and serialization never show.
//! - [`server`]: the `[server]` listener settings.
//! - [`database`]: the `[database]` settings, pools, and the schema check before serving.
//! - [`cli`]: the flags every service shares.
//! - [`telemetry`]: `tracing` setup.
//! - [`shutdown`]: signals and exit status.
//! - [`health`]: [`Readiness`] and the `--healthcheck` probe.
//! - [`metrics`]: the per-service Prometheus registry.
//! - `testing` (feature `testing`): a free local port, and a service binary started on one
//!   and waited for until `/healthz` answers, for tests.

pub mod cli;
pub mod database;
pub mod health;
pub mod metrics;
pub mod secret;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::DatabaseSettings;
pub use health::Readiness;
pub use metrics::MetricsRegistry;
pub use secret::Secret;
pub use server::ServerSettings;
pub use settings::{Layered, Overrides, SettingsError};
