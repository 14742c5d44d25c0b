//! HTTP handlers of the query API, and what they share: paging and parameter parsing.

pub mod incidents;
pub mod login;
pub mod logs;
pub mod services;
pub mod session;

use chrono::{DateTime, Utc};
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, Type,
};
use web::ApiError;

use crate::api::Page;
use crate::cursor::{self, CursorKind};

/// What handlers share.
pub struct QueryState {
    /// The primary: writes (operator actions) and anything that must see them.
    pub pool: store::DbPool,
    /// Reads of lists and details: a replica when `query.read_url` (`DATABASE_READ_URL`) is set, else the
    /// primary.
    pub read_pool: store::DbPool,
    pub default_limit: i64,
    pub max_limit: i64,
    /// Time one log search page may read (`query.search_budget`).
    pub search_budget: std::time::Duration,
    /// Turns for log searches (`query.max_concurrent_searches`).
    pub searches: tokio::sync::Semaphore,
    /// Signs login tokens; `None` when this service only holds a public key.
    pub signer: Option<auth::TokenSigner>,
    pub session_ttl: std::time::Duration,
    /// Lifetime of a console session (`auth.console_session_ttl`).
    pub console_session_ttl: std::time::Duration,
}

impl QueryState {
    /// The page size asked for, within bounds.
    pub fn limit(&self, asked: Option<i64>) -> Result<i64, ApiError> {
        match asked {
            None => Ok(self.default_limit),
            Some(limit) if (1..=self.max_limit).contains(&limit) => Ok(limit),
            Some(limit) => Err(ApiError::BadRequest(format!(
                "limit {limit} is out of range 1..={}",
                self.max_limit
            ))),
        }
    }

    /// A connection to the primary.
    pub async fn connection(&self) -> Result<store::PooledConnection, ApiError> {
        Ok(store::pool::connection(&self.pool).await?)
    }

    /// A connection for reading (the replica, if any).
    pub async fn read_connection(&self) -> Result<store::PooledConnection, ApiError> {
        Ok(store::pool::connection(&self.read_pool).await?)
    }
}

/// Parses an optional time parameter (RFC 3339 or epoch seconds/ms/µs/ns).
/// Epoch numbers beyond ±[`EPOCH_LIMIT`] are refused, as the OpenAPI document says (the
/// nanosecond epoch of the year 2255; nothing later is a sensible query bound).
pub fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|text| {
            let number = text.trim();
            let beyond = match number.parse::<i64>() {
                Ok(integer) => integer.unsigned_abs() > EPOCH_LIMIT as u64,
                Err(_) => number
                    .parse::<f64>()
                    .is_ok_and(|float| float.abs() > EPOCH_LIMIT as f64),
            };
            if beyond {
                return Err(ApiError::BadRequest(format!(
                    "{name}: epoch numbers must lie within ±{EPOCH_LIMIT}"
                )));
            }
            domain::time::parse_timestamp_text(text)
                .map_err(|error| ApiError::BadRequest(format!("{name}: {error}")))
        })
        .transpose()
}

/// Largest epoch number accepted in a time parameter, as documented in the OpenAPI schema.
pub const EPOCH_LIMIT: i64 = 9_000_000_000_000_000_000;

/// A free-text parameter as PostgreSQL can hold it (NUL becomes U+FFFD, as on ingest).
pub fn text_param(value: Option<&String>) -> Option<String> {
    value.cloned().map(domain::strip_nul)
}

fn names_schema(names: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .build()
}

/// OpenAPI schema of a `status` parameter: the names [`domain::Status`] parses, and
/// `active` (open or acknowledged).
pub fn status_schema() -> Object {
    names_schema(
        domain::Status::ALL
            .iter()
            .map(|status| status.as_str())
            .chain(["active"]),
    )
}

/// OpenAPI schema of a `signal` parameter.
pub fn signal_schema() -> Object {
    names_schema(domain::Signal::ALL.iter().map(|signal| signal.as_str()))
}

/// OpenAPI schema of a `severity` parameter.
pub fn severity_schema() -> Object {
    names_schema(
        domain::Severity::ALL
            .iter()
            .map(|severity| severity.as_str()),
    )
}

/// OpenAPI schema of a `level` parameter (lower-case names; parsing also takes aliases such
/// as `warn`, `err` or syslog numbers).
pub fn level_schema() -> Object {
    names_schema(domain::Level::ALL.iter().map(|level| level.as_str()))
}

/// OpenAPI schema of `since`/`until`: RFC 3339, or an epoch number whose magnitude says
/// its unit (seconds, ms, µs or ns, as on ingest); every such number in ±9·10^18 is a time
/// PostgreSQL can hold.
pub fn time_schema() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(-(EPOCH_LIMIT as f64)))
                .maximum(Some(EPOCH_LIMIT as f64)),
        )
}

/// OpenAPI schema of `cursor`: an opaque base64url token, valid only as the server issued
/// it in `next_cursor`; empty means the first page.
pub fn cursor_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9_-]*$"))
        .build()
}

/// Parses an optional enum parameter with its `FromStr`.
pub fn parse_name<T>(name: &str, value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value
        .map(|text| {
            text.parse::<T>()
                .map_err(|error| ApiError::BadRequest(format!("{name}: {error}")))
        })
        .transpose()
}

/// Decodes the `cursor` parameter; an empty one (`?cursor=`, what a client templating
/// `cursor=${next_cursor}` sends for the first page) means the first page.
pub fn parse_cursor(
    kind: CursorKind,
    value: Option<&str>,
) -> Result<Option<(DateTime<Utc>, i64)>, ApiError> {
    value
        .filter(|cursor| !cursor.trim().is_empty())
        .map(|cursor| cursor::decode(kind, cursor))
        .transpose()
}

/// Turns `limit + 1` fetched rows into a page: the extra row only tells that a next page
/// exists, so the last page never ends with an empty one.
pub fn into_page<R, V>(
    mut rows: Vec<R>,
    limit: i64,
    kind: CursorKind,
    key: impl Fn(&R) -> (DateTime<Utc>, i64),
) -> Page<V>
where
    V: From<R>,
{
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(|row| {
            let (at, id) = key(row);
            cursor::encode(kind, at, id)
        })
    } else {
        None
    };
    Page {
        data: rows.into_iter().map(V::from).collect(),
        next_cursor,
    }
}
