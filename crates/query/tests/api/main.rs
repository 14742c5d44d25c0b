//! The query API over HTTP against a real PostgreSQL (a fresh database per test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod console;
mod helpers;
mod http;
mod incidents;
mod limits;
mod logs;
mod openapi;
mod services;
