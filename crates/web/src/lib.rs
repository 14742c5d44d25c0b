//! HTTP plumbing shared by every threesigma service (actix-web), and nothing about who may
//! call: authentication and rate limits are in the `access` crate, so the detector's health
//! listener is built here without linking JWT, argon2 or the rate limiter.
//!
//! # Layout
//! - [`server`]: [`HttpService`], the one service builder: middleware, health endpoints,
//!   graceful stop.
//! - [`error`]: [`ApiError`], the one mapping from errors to HTTP status codes and JSON.
//! - [`clients`]: the bound on connections per client address (429 past it).
//! - [`deadline`]: deadlines for reading request bodies (408 past them).
//! - [`headers`]: security headers, the JSON Content-Security-Policy, CORS.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`metrics`]: request metrics middleware.

pub mod clients;
pub mod deadline;
pub mod error;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod server;

pub use error::ApiError;
pub use server::HttpService;
