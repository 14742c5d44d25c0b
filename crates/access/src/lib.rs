//! Who may call a threesigma API over HTTP: the `auth` crate's tokens and scopes as actix
//! middleware and extractors, per-caller rate limits, and [`ApiGuard`], which wraps a
//! service's API in all of them in the one order that works.
//!
//! # Layout
//! - [`authn`]: the [`authenticate`](authn::authenticate) middleware and the scope
//!   extractors ([`IngestAccess`], [`ReadAccess`], [`OperatorAccess`]).
//! - [`ratelimit`]: per-caller rate limits (actix-governor).
//! - [`guard`]: [`ApiGuard`], the authenticated, rate-limited API scope of a service.
//! - [`session`]: the browser console's session cookie and its same-origin rule.

pub mod authn;
pub mod guard;
pub mod ratelimit;
pub mod session;

pub use authn::{IngestAccess, OperatorAccess, ReadAccess};
pub use guard::ApiGuard;
pub use ratelimit::RateLimitSettings;
