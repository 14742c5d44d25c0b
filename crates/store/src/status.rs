//! The detector's verdict on each service's last complete minute (`service_status`), and
//! the services overview read by `GET /api/v1/services`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, SmallInt, Text, Timestamptz};
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use domain::Status;
use domain::detection::{Algorithm, Reach};

use crate::enums::Stored;
use crate::error::StoreResult;
use crate::schema::service_status;

/// One service's verdict, as the detector writes and the query service reads it.
#[derive(Insertable, Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = service_status)]
pub struct ServiceStatus {
    pub service: String,
    pub judged_at: DateTime<Utc>,
    pub minute: DateTime<Utc>,
    pub errors: i64,
    pub total: i64,
    pub expected: f64,
    pub spread: f64,
    pub z: f64,
    pub p_value: Option<f64>,
    pub fires: bool,
    pub baseline_mean: f64,
    pub baseline_stddev: f64,
    pub baseline_minutes: i32,
    pub baseline_total_mean: f64,
    #[diesel(serialize_as = Stored<Reach>, deserialize_as = Stored<Reach>)]
    pub baseline_reach: Reach,
    #[diesel(serialize_as = Stored<Algorithm>, deserialize_as = Stored<Algorithm>)]
    pub algorithm: Algorithm,
    /// The detection settings the verdict was reached with (a [`domain::DetectionConfig`]);
    /// `None` in rows written before they were recorded.
    pub config: Option<serde_json::Value>,
}

/// Writes verdicts, one statement (the newest write of a service wins; one replica at a
/// time evaluates a service).
pub async fn record(conn: &mut AsyncPgConnection, verdicts: &[ServiceStatus]) -> StoreResult<()> {
    // Bind parameters per statement are limited (65,535): 17 columns, 3,000 rows at a time.
    for chunk in verdicts.chunks(3_000) {
        diesel::insert_into(service_status::table)
            .values(chunk.to_vec())
            .on_conflict(service_status::service)
            .do_update()
            .set((
                service_status::judged_at.eq(excluded(service_status::judged_at)),
                service_status::minute.eq(excluded(service_status::minute)),
                service_status::errors.eq(excluded(service_status::errors)),
                service_status::total.eq(excluded(service_status::total)),
                service_status::expected.eq(excluded(service_status::expected)),
                service_status::spread.eq(excluded(service_status::spread)),
                service_status::z.eq(excluded(service_status::z)),
                service_status::p_value.eq(excluded(service_status::p_value)),
                service_status::fires.eq(excluded(service_status::fires)),
                service_status::baseline_mean.eq(excluded(service_status::baseline_mean)),
                service_status::baseline_stddev.eq(excluded(service_status::baseline_stddev)),
                service_status::baseline_minutes.eq(excluded(service_status::baseline_minutes)),
                service_status::baseline_total_mean
                    .eq(excluded(service_status::baseline_total_mean)),
                service_status::baseline_reach.eq(excluded(service_status::baseline_reach)),
                service_status::algorithm.eq(excluded(service_status::algorithm)),
                service_status::config.eq(excluded(service_status::config)),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The verdicts of `services`.
pub async fn of_services(
    conn: &mut AsyncPgConnection,
    services: &[String],
) -> StoreResult<Vec<ServiceStatus>> {
    Ok(service_status::table
        .filter(service_status::service.eq_any(services))
        .select(ServiceStatus::as_select())
        .load(conn)
        .await?)
}

/// A service in the overview: its errors and events since a time.
#[derive(QueryableByName, Debug, Clone, PartialEq)]
pub struct ServiceActivity {
    #[diesel(sql_type = Text)]
    pub service: String,
    #[diesel(sql_type = BigInt)]
    pub errors: i64,
    #[diesel(sql_type = BigInt)]
    pub events: i64,
}

/// One page of the services overview, by name after `after`: every service with events
/// in minutes from `since` or an active incident, with its errors (level >= `error_level`)
/// and events since then.
pub async fn activity_page(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    error_level: i16,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<ServiceActivity>> {
    let active: Vec<&str> = Status::ALL
        .iter()
        .filter(|status| status.is_active())
        .map(|status| status.as_str())
        .collect();
    Ok(diesel::sql_query(
        "WITH recent AS ( \
             SELECT service, \
                    coalesce(sum(n) FILTER (WHERE level >= $2), 0)::bigint AS errors, \
                    sum(n)::bigint AS events \
               FROM log_counts \
              WHERE minute >= $1 AND ($3::text IS NULL OR service > $3) \
              GROUP BY service), \
         named AS ( \
             SELECT service FROM recent \
             UNION \
             SELECT service FROM incidents \
              WHERE status = ANY($5) AND ($3::text IS NULL OR service > $3)) \
         SELECT n.service, coalesce(r.errors, 0)::bigint AS errors, \
                coalesce(r.events, 0)::bigint AS events \
           FROM named n LEFT JOIN recent r USING (service) \
          ORDER BY n.service \
          LIMIT $4",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<SmallInt, _>(error_level)
    .bind::<Nullable<Text>, _>(after)
    .bind::<BigInt, _>(limit)
    .bind::<Array<Text>, _>(active)
    .load(conn)
    .await?)
}
