//! `/api/v1/services`

use std::collections::BTreeMap;

use access::ReadAccess;
use actix_web::web::{Data, Json, Query};
use chrono::{DateTime, Utc};
use domain::detection::{Algorithm, Reach};
use domain::{Level, Minute};
use serde::{Deserialize, Serialize};
use store::scope::Scope;
use store::status::ServiceStatus;
use utoipa::{IntoParams, ToSchema};
use web::ApiError;
use web::error::ErrorBody;

use super::QueryState;
use crate::api::{BaselineView, Page};
use crate::cursor::{self, CursorKind};

/// The minutes `errors_last_hour` and `events_last_hour` cover: the current one and the 59
/// before it.
const HOUR: i64 = 60;

/// The detector's verdict on a service's last complete minute, exactly as it judged it: its
/// settings, its baseline (anomalous minutes left out), the spread it measured `z` in.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictView {
    /// The minute judged (the last complete one when the detector last evaluated).
    pub minute: DateTime<Utc>,
    /// When the detector judged it.
    pub judged_at: DateTime<Utc>,
    /// Errors (ERROR and above) in that minute, and all events.
    pub errors: i64,
    pub total: i64,
    /// Errors the test expected, and the standard deviation it measured `z` in.
    pub expected: f64,
    pub spread: f64,
    pub z: f64,
    /// Tail probability of `errors` under the baseline; `null` when within the count guard
    /// (nothing that small can fire, so it is not computed).
    pub p_value: Option<f64>,
    /// Whether the minute was strong enough to open an incident.
    pub fires: bool,
    pub baseline: BaselineView,
    /// `window` (the last `detection.baseline` minutes, anomalous ones left out),
    /// `lookback` (reached further back for enough usable minutes) or `unfiltered`
    /// (anomalous minutes included: too few others).
    #[schema(value_type = String)]
    pub baseline_reach: Reach,
    /// `negative_binomial` or `classic`.
    #[schema(value_type = String)]
    pub algorithm: Algorithm,
}

/// One service: its recent counts and the detector's latest verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub service: String,
    /// Errors and events in the current minute and the 59 before it.
    pub errors_last_hour: i64,
    pub events_last_hour: i64,
    /// `null` until a detector has judged a complete minute of the service: a new service's
    /// first `detection.min_baseline` (10) minutes are its warm-up, with nothing to judge
    /// them against.
    pub verdict: Option<VerdictView>,
    /// Ids of the service's active incidents.
    pub active_incidents: Vec<i64>,
}

impl From<ServiceStatus> for VerdictView {
    fn from(status: ServiceStatus) -> VerdictView {
        VerdictView {
            minute: status.minute,
            judged_at: status.judged_at,
            errors: status.errors,
            total: status.total,
            expected: status.expected,
            spread: status.spread,
            z: status.z,
            p_value: status.p_value,
            fires: status.fires,
            baseline: BaselineView {
                mean: status.baseline_mean,
                stddev: status.baseline_stddev,
                minutes: status.baseline_minutes,
                total_mean: status.baseline_total_mean,
            },
            baseline_reach: status.baseline_reach,
            algorithm: status.algorithm,
        }
    }
}

/// Paging of `GET /api/v1/services`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ServiceParams {
    /// Page size, 1 to `query.max_limit` (default 50, at most 500 unless configured).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(schema_with = super::cursor_schema)]
    pub cursor: Option<String>,
}

/// Every service with events in the last hour or an active incident, by name: its counts
/// over the hour and the detector's verdict on its last complete minute (written by the
/// detector as it judges, so this shows what the detector decided, with its settings).
/// Three SQL statements per page whatever the number of services.
#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "services",
    params(ServiceParams),
    responses(
        (status = 200, description = "A page of services, by name", body = Page<ServiceView>),
        (status = 400, description = "Bad parameter or cursor", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _caller: ReadAccess,
    state: Data<QueryState>,
    params: Query<ServiceParams>,
) -> Result<Json<Page<ServiceView>>, ApiError> {
    let limit = state.limit(params.limit)?;
    // An empty cursor is the first page, as in every listing.
    let after = params
        .cursor
        .as_deref()
        .filter(|cursor| !cursor.trim().is_empty())
        .map(|cursor| cursor::decode_name(CursorKind::Services, cursor))
        .transpose()?;
    let since = Minute::containing(Utc::now()).minus(HOUR - 1);
    let mut conn = state.read_connection().await?;
    let mut rows = store::status::activity_page(
        &mut conn,
        since.start(),
        Level::Error.as_i16(),
        after.as_deref(),
        limit + 1,
    )
    .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let names: Vec<String> = rows.iter().map(|row| row.service.clone()).collect();
    let mut verdicts: BTreeMap<String, ServiceStatus> =
        store::status::of_services(&mut conn, &names)
            .await?
            .into_iter()
            .map(|status| (status.service.clone(), status))
            .collect();
    let mut incidents: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for incident in store::incidents::active(&mut conn, &Scope::Services(names)).await? {
        incidents
            .entry(incident.service)
            .or_default()
            .push(incident.id);
    }
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|row| cursor::encode_name(CursorKind::Services, &row.service));
    let data = rows
        .into_iter()
        .map(|row| ServiceView {
            verdict: verdicts.remove(&row.service).map(VerdictView::from),
            active_incidents: incidents.remove(&row.service).unwrap_or_default(),
            service: row.service,
            errors_last_hour: row.errors,
            events_last_hour: row.events,
        })
        .collect();
    Ok(Json(Page { data, next_cursor }))
}
