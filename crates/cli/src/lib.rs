//! `threesigma`, the command-line tool: migrations, users, tokens, and the all-in-one `up`
//! and `demo` for a laptop.
//!
//! # Layout
//! - [`access`]: users and tokens.
//! - [`postgres`]: finding or starting a PostgreSQL for `up`.
//! - [`stack`]: ingest, detector and query in one process.
//! - [`traffic`]: simulated shipper traffic for the demo and the end-to-end test.
//! - [`commands`]: `up` and `demo`.
//! - [`patterns`]: `threesigma patterns`, message templates of standard input.

pub mod access;
pub mod commands;
pub mod patterns;
pub mod postgres;
pub mod stack;
pub mod traffic;
