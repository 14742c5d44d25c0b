//! Daily partitions of `logs`: created ahead of time, dropped after retention.

use chrono::{Duration, NaiveDate, Utc};
use diesel::sql_types::{Date, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::StoreResult;

#[derive(diesel::QueryableByName)]
struct Created {
    #[diesel(sql_type = Integer)]
    created: i32,
}

#[derive(diesel::QueryableByName)]
struct Dropped {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Makes sure the partitions from yesterday to `days_ahead` days ahead exist; returns how
/// many were created.
pub async fn ensure_ahead(conn: &mut AsyncPgConnection, days_ahead: u32) -> StoreResult<i32> {
    let first: NaiveDate = (Utc::now() - Duration::days(1)).date_naive();
    let days = i32::try_from(days_ahead)
        .unwrap_or(i32::MAX)
        .saturating_add(2);
    let row: Created =
        diesel::sql_query("SELECT threesigma_ensure_log_partitions($1, $2) AS created")
            .bind::<Date, _>(first)
            .bind::<Integer, _>(days)
            .get_result(conn)
            .await?;
    Ok(row.created)
}

/// Drops the partitions whose whole day is older than `retention_days`; returns their names.
pub async fn drop_expired(
    conn: &mut AsyncPgConnection,
    retention_days: u32,
) -> StoreResult<Vec<String>> {
    let cutoff: NaiveDate = (Utc::now() - Duration::days(i64::from(retention_days))).date_naive();
    let rows: Vec<Dropped> = diesel::sql_query("SELECT threesigma_drop_log_partitions($1) AS name")
        .bind::<Date, _>(cutoff)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| row.name).collect())
}
