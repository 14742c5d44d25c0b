//! threesigma's PostgreSQL layer. Everything that knows SQL lives here; services call these
//! functions with a connection (pooled, or inside a transaction) and get typed rows back.
//!
//! # Layout
//! - [`schema`]: diesel's view of the tables in `migrations/`.
//! - [`models`]: row types.
//! - [`enums`]: domain enums in `text` columns ([`Stored`](enums::Stored)).
//! - [`pool`]: the deadpool + diesel-async pool with explicit timeouts, and raw connections.
//! - [`tls`]: libpq's `sslmode`/`sslrootcert` read from the URL, rustls underneath.
//! - [`migrate`]: embedded migrations and the schema-is-current check.
//! - [`cluster`]: a private PostgreSQL cluster (for `threesigma up` and fault tests).
//! - [`bulk`]: the ingest hot path (a batch of log rows and its rollup upsert, committed
//!   together: UNNEST in one statement by default, or binary COPY).
//! - [`counts`]: per-minute rollup reads for the detector.
//! - [`incidents`]: incident lifecycle statements and incident pages.
//! - [`logs`]: log pages.
//! - [`explanations`]: incident explanations, and bounded weighted samples of a service's
//!   lines.
//! - [`status`]: the detector's verdict on each service's last minute, and the services
//!   overview.
//! - [`users`]: users (credentials stay inside) and revoked tokens.
//! - [`scope`], [`leases`]: which services a detector replica evaluates.
//! - [`partitions`]: daily log partitions ahead, retention behind.
//! - `testing` (feature `testing`): a fresh database per test from a migrated template.

pub mod bulk;
pub mod cluster;
pub mod counts;
pub mod enums;
pub mod error;
pub mod explanations;
pub mod incidents;
pub mod leases;
pub mod logs;
pub mod migrate;
pub mod models;
pub mod partitions;
pub mod pool;
pub mod schema;
pub mod scope;
pub mod search;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod users;

pub use error::{StoreError, StoreResult};
pub use pool::{DbPool, PoolSettings, PooledConnection};
