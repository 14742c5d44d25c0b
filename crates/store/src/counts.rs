//! Reads of the per-minute rollups (`log_counts`). The detector reads nothing else.

use chrono::{DateTime, Utc};
use diesel::dsl::sum;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::StoreResult;
use crate::models::MinuteCountRow;
use crate::schema::log_counts;
use crate::scope::{Scope, scoped};

/// Errors (level >= `error_level`) and totals per service and minute for minutes in
/// `from..=to`, for the services of `scope`.
pub async fn minute_counts(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    scope: &Scope,
    error_level: i16,
) -> StoreResult<Vec<MinuteCountRow>> {
    let query = log_counts::table
        .filter(log_counts::minute.ge(from))
        .filter(log_counts::minute.le(to))
        .group_by((log_counts::service, log_counts::minute))
        .select((
            log_counts::service,
            log_counts::minute,
            sum(log_counts::n).aggregate_filter(log_counts::level.ge(error_level)),
            sum(log_counts::n),
        ))
        .into_boxed();
    Ok(scoped!(query, scope, log_counts::service, having)
        .load(conn)
        .await?)
}
