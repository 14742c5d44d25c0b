//! Shared actix-web plumbing for threesigma's services.
//!
//! # Layout
//! - [`auth`]: tokens, scopes and roles, revocation, passwords.
//! - [`ratelimit`]: per-caller rate limits.
//! - [`cli`]: the flags every service shares.
//! - [`settings`]: layered settings (defaults → file → env → flags), human durations, the
//!   settings listing of `--help`.
//! - [`error`]: [`ApiError`], the one mapping from errors to HTTP status codes and JSON.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`metrics`]: per-service Prometheus registry and request metrics middleware.
//! - [`telemetry`]: `tracing` setup.
//! - [`server`]: listeners, signals, graceful stop.

pub mod auth;
pub mod cli;
pub mod error;
pub mod health;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod settings;
pub mod telemetry;

pub use error::ApiError;
pub use settings::SettingsError;
