//! `/api/v1/services`

use std::collections::BTreeMap;

use access::ReadAccess;
use actix_web::web::{Data, Json, Path, Query};
use chrono::{DateTime, Utc};
use domain::detection::{Algorithm, MinuteSeries, Reach, trace};
use domain::{DetectionConfig, Level, Minute};
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
const HOUR_USIZE: usize = 60;

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
    /// Errors in each minute of the hour, oldest first (60 values, the last one the
    /// current, partial minute): a sparkline.
    pub errors_per_minute: Vec<i64>,
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
/// Four SQL statements per page whatever the number of services.
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
    for incident in store::incidents::active(&mut conn, &Scope::Services(names.clone())).await? {
        incidents
            .entry(incident.service)
            .or_default()
            .push(incident.id);
    }
    let mut sparklines: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let now = Minute::containing(Utc::now());
    for row in store::counts::minute_counts(
        &mut conn,
        since.start(),
        now.start(),
        &Scope::Services(names.clone()),
        Level::Error.as_i16(),
    )
    .await?
    {
        let index = Minute::containing(row.minute).since(since);
        if let (Ok(index @ 0..HOUR_USIZE), Some(errors)) = (usize::try_from(index), row.errors) {
            sparklines
                .entry(row.service)
                .or_insert_with(|| vec![0; HOUR_USIZE])[index] = errors;
        }
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
            errors_per_minute: sparklines
                .remove(&row.service)
                .unwrap_or_else(|| vec![0; HOUR_USIZE]),
            service: row.service,
            errors_last_hour: row.errors,
            events_last_hour: row.events,
        })
        .collect();
    Ok(Json(Page { data, next_cursor }))
}

/// `since` and `until` of a span: `until` defaults to `now`, `since` to an hour before
/// `until`, and `since` must come first.
fn span(
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let until = super::parse_time("until", until)?.unwrap_or(now);
    let since =
        super::parse_time("since", since)?.unwrap_or(until - chrono::Duration::minutes(HOUR));
    if since >= until {
        return Err(ApiError::BadRequest(
            "since must be before until".to_owned(),
        ));
    }
    Ok((since, until))
}

/// The longest span `GET /api/v1/services/{name}/series` answers: a day of minutes.
pub const MAX_SERIES_MINUTES: i64 = 24 * 60;

/// The span of `GET /api/v1/services/{name}/series`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    /// First minute (the one containing it); default an hour before `until`.
    #[param(schema_with = super::time_schema)]
    pub since: Option<String>,
    /// End (exclusive; default now). Minutes after the current one are not reported.
    #[param(schema_with = super::time_schema)]
    pub until: Option<String>,
}

/// One minute of a service's series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    pub minute: DateTime<Utc>,
    /// Errors (ERROR and above) and all events.
    pub errors: i64,
    pub total: i64,
    /// The baseline the minute's errors were judged against (anomalous minutes left out):
    /// mean and standard deviation of errors per minute. `null` while the service has too
    /// little history (its first `detection.min_baseline` minutes) and for the current,
    /// partial minute.
    pub baseline_mean: Option<f64>,
    pub baseline_stddev: Option<f64>,
    /// The smallest error count that would have opened an incident in this minute alone
    /// (the count signal, with the detector's algorithm and settings); `null` when the
    /// baseline is.
    pub threshold: Option<i64>,
    /// Whether the minute was judged anomalous.
    pub anomalous: bool,
    /// The current minute: its counts are still growing and it is not judged yet.
    pub partial: bool,
}

/// A service's per-minute errors and totals with the baseline and threshold each minute
/// was judged against.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesView {
    pub service: String,
    /// `negative_binomial` or `classic`.
    #[schema(value_type = String)]
    pub algorithm: Algorithm,
    /// `detector`: the settings the detector last judged this service with; `default`: the
    /// defaults (no detector has judged the service yet).
    pub settings: String,
    /// Oldest first, one per minute, zero-filled.
    pub minutes: Vec<SeriesPoint>,
}

/// A service's per-minute errors and totals, each minute with the baseline mean and the
/// detection threshold it was judged against, computed with the detector's own code and the
/// settings it last judged the service with: what the console's chart draws. At most a day
/// of minutes per request.
#[utoipa::path(
    get,
    path = "/api/v1/services/{name}/series",
    tag = "services",
    params(("name" = String, Path, description = "Service name"), SeriesParams),
    responses(
        (status = 200, description = "The service's minutes", body = SeriesView),
        (status = 400, description = "Bad parameter, or a span longer than a day", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn series(
    _caller: ReadAccess,
    state: Data<QueryState>,
    name: Path<String>,
    params: Query<SeriesParams>,
) -> Result<Json<SeriesView>, ApiError> {
    let service = domain::strip_nul(name.into_inner());
    let now = Utc::now();
    let (since, until) = span(params.since.as_deref(), params.until.as_deref(), now)?;
    let first = Minute::containing(since);
    let current = Minute::containing(now);
    // `until` is exclusive: the minute holding its last instant is the last one.
    let last = Minute::containing(until - chrono::Duration::nanoseconds(1)).min(current);
    if last.since(first) >= MAX_SERIES_MINUTES {
        return Err(ApiError::BadRequest(format!(
            "the span is {} minutes; at most {MAX_SERIES_MINUTES} (a day) per request",
            last.since(first) + 1
        )));
    }
    let mut conn = state.read_connection().await?;
    let recorded = store::status::of_services(&mut conn, std::slice::from_ref(&service))
        .await?
        .into_iter()
        .next()
        .and_then(|status| status.config)
        .and_then(|config| serde_json::from_value::<DetectionConfig>(config).ok());
    let settings = if recorded.is_some() {
        "detector"
    } else {
        "default"
    };
    let config = recorded.unwrap_or_default();
    let mut minutes = Vec::new();
    if last >= first {
        // What a baseline of the first minute can reach, and the two-minute window.
        let horizon = first.minus(
            i64::from(
                config
                    .baseline_lookback_minutes
                    .max(config.baseline_minutes),
            ) + 2,
        );
        let mut counts = MinuteSeries::new(horizon, last);
        for row in store::counts::minute_counts(
            &mut conn,
            horizon.start(),
            last.start(),
            &Scope::Services(vec![service.clone()]),
            Level::Error.as_i16(),
        )
        .await?
        {
            counts.add(
                Minute::containing(row.minute),
                u64::try_from(row.errors.unwrap_or(0)).unwrap_or(0),
                u64::try_from(row.total.unwrap_or(0)).unwrap_or(0),
            );
        }
        // Minutes before the service's first event are unknown, not quiet, as for a
        // detector that meets the service; a service without events is not judged at all.
        let start = counts.first_event().unwrap_or(last.plus(1));
        counts = counts.with_history_start(start);
        let complete = last.min(current.minus(1));
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        minutes = trace(&config, &counts, first, complete)
            .into_iter()
            .map(|point| SeriesPoint {
                minute: point.minute.start(),
                errors: count(point.errors),
                total: count(point.total),
                baseline_mean: point.verdict.map(|verdict| verdict.baseline.mean),
                baseline_stddev: point.verdict.map(|verdict| verdict.baseline.stddev),
                threshold: point.verdict.map(|verdict| count(verdict.threshold)),
                anomalous: point.anomalous,
                partial: false,
            })
            .collect();
        if last == current {
            minutes.push(SeriesPoint {
                minute: current.start(),
                errors: count(counts.errors(current)),
                total: count(counts.totals(current)),
                baseline_mean: None,
                baseline_stddev: None,
                threshold: None,
                anomalous: false,
                partial: true,
            });
        }
    }
    Ok(Json(SeriesView {
        service,
        algorithm: config.algorithm,
        settings: settings.to_owned(),
        minutes,
    }))
}

/// The longest span `GET /api/v1/services/{name}/patterns` answers: a day.
pub const MAX_PATTERN_MINUTES: i64 = 24 * 60;

/// Lines `GET /api/v1/services/{name}/patterns` samples at most.
pub const PATTERN_SAMPLE_LINES: i64 = 5_000;

/// Templates `GET /api/v1/services/{name}/patterns` lists at most.
pub const PATTERN_LIMIT: usize = 50;

/// The span and level of `GET /api/v1/services/{name}/patterns`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PatternParams {
    /// Start (the minute containing it); default an hour before `until`.
    #[param(schema_with = super::time_schema)]
    pub since: Option<String>,
    /// End (exclusive, rounded up to a minute; default now).
    #[param(schema_with = super::time_schema)]
    pub until: Option<String>,
    /// Lowest level to include (default: every level; `error` means error and fatal).
    #[param(schema_with = super::level_schema)]
    pub level: Option<String>,
}

/// One template of a service's lines.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternCountView {
    /// The template; variable parts (numbers, ids, addresses, paths…) are `<*>`.
    pub template: String,
    /// Lines with this template in the span (estimated from the sample and the per-minute
    /// counts when more lines were there than sampled).
    pub count: u64,
    /// Sampled lines with this template.
    pub sampled: u64,
    /// One line with this template: its id, time and first 500 characters.
    pub example_log_id: i64,
    pub example_ts: DateTime<Utc>,
    pub example_message: String,
}

/// The templates of a service's lines in a span.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternsView {
    pub service: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Lines in the span at the level asked (from the per-minute counts), and how many were
    /// sampled.
    pub lines: u64,
    pub sampled: u64,
    /// Most lines first, at most 50.
    pub patterns: Vec<PatternCountView>,
}

/// The message templates of a service's lines in a span, with their counts: for looking
/// around. Bounded: at most a day, whole minutes; at most 5,000 lines are read (all of them
/// when the span has no more; otherwise spread over the minutes, quiet minutes read whole),
/// and counts are scaled up by each minute's count; the 50 commonest templates are listed.
#[utoipa::path(
    get,
    path = "/api/v1/services/{name}/patterns",
    tag = "services",
    params(("name" = String, Path, description = "Service name"), PatternParams),
    responses(
        (status = 200, description = "The service's templates", body = PatternsView),
        (status = 400, description = "Bad parameter or service name, or a span longer than a day", body = ErrorBody),
        (status = 401, description = "No or bad token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn patterns(
    _caller: ReadAccess,
    state: Data<QueryState>,
    name: Path<String>,
    params: Query<PatternParams>,
) -> Result<Json<PatternsView>, ApiError> {
    let service = domain::ServiceName::parse(&name.into_inner())
        .map_err(|error| ApiError::BadRequest(format!("service: {error}")))?
        .to_string();
    let min_level = super::parse_name::<Level>("level", params.level.as_deref())?
        .map_or(Level::Trace.as_i16(), Level::as_i16);
    let (since, until) = span(params.since.as_deref(), params.until.as_deref(), Utc::now())?;
    let first = Minute::containing(since);
    // `until` is exclusive: the span ends with the minute holding its last instant.
    let end = Minute::containing(until - chrono::Duration::nanoseconds(1)).plus(1);
    let minutes = end.since(first);
    if minutes > MAX_PATTERN_MINUTES {
        return Err(ApiError::BadRequest(format!(
            "the span is {minutes} minutes; at most {MAX_PATTERN_MINUTES} (a day) per request"
        )));
    }
    let mut conn = state.read_connection().await?;
    let sample = store::explanations::sample(
        &mut conn,
        &service,
        (first.start(), end.start()),
        min_level,
        PATTERN_SAMPLE_LINES,
        false,
    )
    .await?;
    let lines = sample.lines();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative sums
    let total = lines.iter().map(|l| l.weight).sum::<f64>().round() as u64;
    let patterns = domain::patterns::pattern_counts(&lines, PATTERN_LIMIT)
        .into_iter()
        .map(|p| PatternCountView {
            template: p.template,
            count: p.count,
            sampled: p.sampled,
            example_log_id: p.example_log_id,
            example_ts: p.example_ts,
            example_message: p.example_message,
        })
        .collect();
    Ok(Json(PatternsView {
        service,
        since: first.start(),
        until: end.start(),
        lines: total,
        sampled: lines.len() as u64,
        patterns,
    }))
}
