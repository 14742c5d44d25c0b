//! Daily partitions of `logs`: created ahead of time, dropped after retention.

use chrono::{Duration, NaiveDate, Utc};
use diesel::sql_types::{Bool, Date, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::error::{StoreError, StoreResult};

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

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Deletes per-minute rollups older than `retention_days`; returns how many rows went.
pub async fn prune_counts(conn: &mut AsyncPgConnection, retention_days: u32) -> StoreResult<usize> {
    use crate::schema::log_counts;
    use diesel::{ExpressionMethods, QueryDsl};
    let cutoff = Utc::now() - Duration::days(i64::from(retention_days));
    Ok(
        diesel::delete(log_counts::table.filter(log_counts::minute.lt(cutoff)))
            .execute(conn)
            .await?,
    )
}

/// What one maintenance run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    pub created: i32,
    pub dropped: Vec<String>,
    /// Rollup rows deleted for being older than the retention.
    pub pruned_counts: usize,
    /// Search index rows (blocks and pending marks) deleted with them.
    pub pruned_search: usize,
    /// Idempotency keys of ingest requests past their window (ingest prunes its batch ids).
    pub pruned_idempotency_keys: usize,
}

/// Creates partitions ahead, drops expired ones and prunes the rollups and search index of
/// the same age
/// (`retention_days` 0 keeps everything), unless another process is doing it right now:
/// then `None`. However many detectors run it, each partition is created and dropped by
/// exactly one of them.
pub async fn maintain(
    conn: &mut AsyncPgConnection,
    days_ahead: u32,
    retention_days: u32,
) -> StoreResult<Option<Maintenance>> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let lock: Locked =
            diesel::sql_query("SELECT pg_try_advisory_xact_lock(29811, -2) AS locked")
                .get_result(conn)
                .await?;
        if !lock.locked {
            return Ok(None);
        }
        let created = ensure_ahead(conn, days_ahead).await?;
        let pruned_idempotency_keys = crate::bulk::prune_idempotency_keys(conn).await?;
        let (dropped, pruned_counts, pruned_search) = if retention_days > 0 {
            // The first day whose partition is kept: its rows stay searchable.
            let cutoff = (Utc::now() - Duration::days(i64::from(retention_days)))
                .date_naive()
                .and_time(chrono::NaiveTime::MIN)
                .and_utc();
            (
                drop_expired(conn, retention_days).await?,
                prune_counts(conn, retention_days).await?,
                crate::search::prune(conn, cutoff).await?,
            )
        } else {
            (Vec::new(), 0, 0)
        };
        Ok(Some(Maintenance {
            created,
            dropped,
            pruned_counts,
            pruned_search,
            pruned_idempotency_keys,
        }))
    })
    .await
}
