//! HTTP handlers of the query API, and what they share: paging and parameter parsing.

pub mod auth;
pub mod incidents;
pub mod logs;
pub mod services;

use chrono::{DateTime, Utc};
use web::ApiError;

use crate::api::Page;
use crate::cursor::{self, CursorKind};

/// What handlers share.
pub struct QueryState {
    /// The primary: writes (operator actions) and anything that must see them.
    pub pool: store::DbPool,
    /// Reads of lists and details: a replica when `database.read_url` is set, else the
    /// primary.
    pub read_pool: store::DbPool,
    pub default_limit: i64,
    pub max_limit: i64,
    /// Signs login tokens; `None` when this service only holds a public key.
    pub signer: Option<web::auth::TokenSigner>,
    pub session_ttl: std::time::Duration,
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
pub fn parse_time(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|text| {
            domain::time::parse_timestamp_text(text)
                .map_err(|error| ApiError::BadRequest(format!("{name}: {error}")))
        })
        .transpose()
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

/// Decodes the `cursor` parameter.
pub fn parse_cursor(
    kind: CursorKind,
    value: Option<&str>,
) -> Result<Option<(DateTime<Utc>, i64)>, ApiError> {
    value.map(|cursor| cursor::decode(kind, cursor)).transpose()
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
