//! `threesigma-query`: paginated reads of incidents and logs for operators.
//!
//! # Layout
//! - [`settings`]: listener, database, paging.
//! - [`api`]: the response types (no secret has a field in them).
//! - [`openapi`]: the OpenAPI description (utoipa) and its docs page.
//! - [`cursor`]: opaque, validated keyset cursors.
//! - [`routes`]: the handlers.
//! - [`console`]: the operator console (embedded page, script and style) at `/`.
//! - [`startup`]: [`Application`], building and running the service.

pub mod api;
pub mod console;
pub mod cursor;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::Application;
