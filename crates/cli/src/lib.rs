//! `threesigma`, the command-line tool: migrations, and the all-in-one `up` and `demo` for a
//! laptop (users and tokens come with the security layer).
//!
//! # Layout
//! - [`postgres`]: finding or starting a PostgreSQL for `up`.
//! - [`stack`]: ingest, detector and query in one process.
//! - [`traffic`]: simulated shipper traffic for the demo and the end-to-end test.
//! - [`commands`]: `up` and `demo`.

pub mod commands;
pub mod postgres;
pub mod stack;
pub mod traffic;
