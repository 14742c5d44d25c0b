//! `/api/v1/services`

use std::collections::BTreeMap;

use access::ReadAccess;
use actix_web::web::{Data, Json};
use chrono::{DateTime, Utc};
use domain::detection::{Baseline, MinuteSeries, assess};
use domain::{DetectionConfig, Level, Minute};
use serde::Serialize;
use store::scope::Scope;
use utoipa::ToSchema;
use web::ApiError;
use web::error::ErrorBody;

use super::QueryState;
use crate::api::BaselineView;

/// How far back the overview looks.
const HOUR: i64 = 60;

/// One service, as the detector sees it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub service: String,
    /// The last complete minute.
    pub minute: DateTime<Utc>,
    /// Errors (ERROR and above) in that minute.
    pub errors: u64,
    /// All events in that minute.
    pub total: u64,
    pub errors_last_hour: u64,
    pub events_last_hour: u64,
    /// The 30 minutes before `minute`; absent when there is too little history.
    pub baseline: Option<BaselineView>,
    /// z of `errors` against the baseline (the detector's predictive variance).
    pub z: Option<f64>,
    /// Tail probability of `errors` under the baseline, when past the count guard.
    pub p_value: Option<f64>,
    /// Ids of the service's active incidents.
    pub active_incidents: Vec<i64>,
}

/// Every service with events in the last hour (or an active incident): recent counts and
/// where the last complete minute stands against its baseline. Two SQL queries whatever the
/// number of services.
#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "services",
    responses(
        (status = 200, description = "Services, by name", body = [ServiceView]),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _caller: ReadAccess,
    state: Data<QueryState>,
) -> Result<Json<Vec<ServiceView>>, ApiError> {
    let now = Minute::containing(Utc::now());
    let first = now.minus(HOUR);
    let mut conn = state.read_connection().await?;
    let counts = store::counts::minute_counts(
        &mut conn,
        first.start(),
        now.start(),
        &Scope::All,
        Level::Error.as_i16(),
    )
    .await?;
    let active = store::incidents::active(&mut conn, &Scope::All).await?;

    let mut series: BTreeMap<String, MinuteSeries> = BTreeMap::new();
    for row in counts {
        series
            .entry(row.service)
            .or_insert_with(|| MinuteSeries::new(first, now))
            .add(
                Minute::containing(row.minute),
                u64::try_from(row.errors.unwrap_or(0)).unwrap_or(0),
                u64::try_from(row.total.unwrap_or(0)).unwrap_or(0),
            );
    }
    let mut incidents: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for incident in active {
        series
            .entry(incident.service.clone())
            .or_insert_with(|| MinuteSeries::new(first, now));
        incidents
            .entry(incident.service)
            .or_default()
            .push(incident.id);
    }

    let config = DetectionConfig::default();
    let minute = now.minus(1);
    let views = series
        .into_iter()
        .map(|(service, series)| {
            let hour = (1..=HOUR).map(|back| now.minus(back));
            let (errors_last_hour, events_last_hour) = hour.fold((0, 0), |(errors, events), m| {
                (errors + series.errors(m), events + series.totals(m))
            });
            let (errors, total) = (series.errors(minute), series.totals(minute));
            let baseline = Baseline::for_bucket(&config, &series, minute, &[]);
            let verdict =
                baseline.map(|baseline| assess(&config, minute, errors, total, &baseline));
            ServiceView {
                active_incidents: incidents.remove(&service).unwrap_or_default(),
                service,
                minute: minute.start(),
                errors,
                total,
                errors_last_hour,
                events_last_hour,
                baseline: baseline.map(|b| BaselineView {
                    mean: b.mean,
                    stddev: b.stddev,
                    minutes: i32::try_from(b.minutes).unwrap_or(i32::MAX),
                    total_mean: b.total_mean,
                }),
                z: verdict.map(|v| v.z),
                p_value: verdict.and_then(|v| v.p_value),
            }
        })
        .collect();
    Ok(Json(views))
}
