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

/// Errors (level >= `error_level`) of one service in one quarter-hour, and the first minute
/// of it that has any events.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct QuarterCountRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub service: String,
    /// Quarter-hours since the epoch.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub quarter: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub errors: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub first_minute: DateTime<Utc>,
}

/// Errors per service and quarter-hour for minutes in `from..=to`, for `services`: what a
/// daily rhythm is learned from (two weeks of them are 1,344 rows a service, not 20,160).
pub async fn quarter_counts(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    services: &[String],
    error_level: i16,
) -> StoreResult<Vec<QuarterCountRow>> {
    use diesel::sql_types::{Array, SmallInt, Text, Timestamptz};
    Ok(diesel::sql_query(
        "SELECT service, floor(extract(epoch FROM minute) / 900)::bigint AS quarter, \
                coalesce(sum(n) FILTER (WHERE level >= $4), 0)::bigint AS errors, \
                min(minute) AS first_minute \
         FROM log_counts \
         WHERE minute >= $1 AND minute <= $2 AND service = ANY($3) \
         GROUP BY 1, 2",
    )
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Array<Text>, _>(services)
    .bind::<SmallInt, _>(error_level)
    .load(conn)
    .await?)
}
