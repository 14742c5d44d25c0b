//! Ingest, end to end over HTTP against a real PostgreSQL (a fresh database per test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod hardening;
mod helpers;
mod idempotency;
mod logs;
mod shippers;
