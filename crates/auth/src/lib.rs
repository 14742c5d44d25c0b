//! Who may do what: roles and scopes, JWT bearer tokens, revocation, passwords. No HTTP:
//! the `access` crate turns these into actix middleware and extractors, and the CLI uses
//! them directly to add users and issue tokens.
//!
//! - Tokens are JWTs signed with HS256 (a shared `JWT_SECRET` of at least 32 bytes) or with
//!   an EdDSA / RS256 key pair, so that verifying services hold only the public key. Only
//!   the configured algorithm is accepted: `alg: none`, and a token signed with another
//!   algorithm than the service's (algorithm confusion), are refused. `exp`, `iss`, `aud`,
//!   `sub` and `jti` are required and checked.
//! - Scopes (`scope` claim, space-separated): `ingest` (send logs), `read` (read incidents
//!   and logs), `admin` (everything). Login tokens also carry the user's `role`;
//!   acknowledging and resolving incidents needs the `operator` or `admin` role (or the
//!   admin scope).
//! - Revoked token ids are polled from the database every few seconds by every service.
//!
//! # Layout
//! - [`roles`]: [`Scope`] and [`Role`].
//! - [`settings`]: the `[auth]` settings, keys, and the secret from the environment.
//! - [`token`]: [`TokenSigner`], [`TokenVerifier`], [`Principal`] and their errors.
//! - [`revocation`]: keeping a verifier's list of revoked tokens fresh.
//! - [`password`]: argon2id hashes.
//! - `testing` (feature `testing`): a fixed secret, test tokens, and forged ones.

pub mod password;
pub mod revocation;
pub mod roles;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use roles::{Role, Scope};
pub use settings::{AuthSettings, JwtAlgorithm, secret_from_env};
pub use token::{AuthError, IssuedToken, Principal, TokenError, TokenSigner, TokenVerifier};
