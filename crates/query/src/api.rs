//! What the API returns. These types are built from rows field by field; none of them has
//! a field for anything secret, so nothing secret can be serialized by accident.

use chrono::{DateTime, Utc};
use domain::detection::Algorithm;
use domain::{EventKind, Severity, Signal, Status};
use serde::Serialize;
use store::models::{IncidentEventRow, IncidentRow, LogRow};
use utoipa::ToSchema;

/// A page of results with the cursor of the next page (`null` on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last page. Opaque.
    pub next_cursor: Option<String>,
}

/// The baseline an incident was judged against.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineView {
    /// Mean errors per minute.
    pub mean: f64,
    /// Standard deviation of errors per minute.
    pub stddev: f64,
    /// Minutes it summarises.
    pub minutes: i32,
    /// Mean events (every level) per minute.
    pub total_mean: f64,
}

/// The rule that opened the incident and its thresholds: for `negative_binomial` the tail
/// probability `p_open`, for `classic` `z_threshold`; for both the count guard `min_count`
/// and `firing_count`, the smallest error count that would have fired in the opening window
/// against this baseline (the threshold in errors); `dispersion`, the service's learned
/// variance-over-mean the test floored its variance with (absent without a profile), and
/// `rhythm_rise`, how many times the service's daily rhythm raised the recent baseline for
/// that window (absent when it did not).
#[derive(Debug, Serialize, ToSchema)]
pub struct ThresholdsView {
    /// `negative_binomial` or `classic`.
    #[schema(value_type = String)]
    pub algorithm: Algorithm,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_open: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z_threshold: Option<f64>,
    pub min_count: i64,
    pub firing_count: Option<i64>,
    pub dispersion: Option<f64>,
    pub rhythm_rise: Option<f64>,
}

/// What the incident opened with, kept while the current and peak figures move. `expected`
/// and `spread` are the errors the test expected in the opening window and the standard
/// deviation it measured `z` in (the predictive one, never less than Poisson's, for the
/// count and ratio tests): the "±" that belongs beside `z`, unlike the baseline's own
/// `stddev`, which is 0 for a flat baseline.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpeningView {
    pub count: i64,
    pub z: f64,
    pub expected: Option<f64>,
    pub spread: Option<f64>,
    /// `null` unless the incident opened from data that arrived late; then how many minutes
    /// its window ended before the last complete minute at opening (data stamped three
    /// minutes ago, in the minute that ended two minutes before the last complete one,
    /// gives 2).
    pub late_by_minutes: Option<i64>,
}

/// An incident.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    pub id: i64,
    pub service: String,
    /// `error_count` or `error_rate`.
    #[schema(value_type = String)]
    pub signal: Signal,
    /// `open`, `acknowledged` or `resolved`.
    #[schema(value_type = String)]
    pub status: Status,
    /// `warning` or `critical`.
    #[schema(value_type = String)]
    pub severity: Severity,
    pub title: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub last_evaluated_at: DateTime<Utc>,
    /// The first minute that fired.
    pub first_minute: DateTime<Utc>,
    /// The newest minute that fired.
    pub last_fired_minute: DateTime<Utc>,
    pub current_z: f64,
    pub current_count: i64,
    /// All events in the evaluated window (the error rate is `current_count / current_total`).
    pub current_total: i64,
    pub peak_z: f64,
    pub peak_count: i64,
    pub p_value: Option<f64>,
    pub baseline: BaselineView,
    /// `null` only for incidents opened before this was recorded.
    pub opening: Option<OpeningView>,
    pub thresholds: ThresholdsView,
    pub reopened_count: i32,
}

impl From<IncidentRow> for IncidentView {
    fn from(row: IncidentRow) -> Self {
        IncidentView {
            id: row.id,
            service: row.service,
            signal: row.signal,
            status: row.status,
            severity: row.severity,
            title: row.title,
            opened_at: row.opened_at,
            acknowledged_at: row.acknowledged_at,
            acknowledged_by: row.acknowledged_by,
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by,
            last_evaluated_at: row.last_evaluated_at,
            first_minute: row.first_minute,
            last_fired_minute: row.last_fired_minute,
            current_z: row.current_z,
            current_count: row.current_count,
            current_total: row.current_total,
            peak_z: row.peak_z,
            peak_count: row.peak_count,
            p_value: row.p_value,
            baseline: BaselineView {
                mean: row.baseline_mean,
                stddev: row.baseline_stddev,
                minutes: row.baseline_minutes,
                total_mean: row.baseline_total_mean,
            },
            opening: row.opening.as_ref().map(|opening| OpeningView {
                count: opening.count,
                z: opening.z,
                expected: opening.expected,
                spread: opening.spread,
                late_by_minutes: opening.late_by_minutes,
            }),
            thresholds: ThresholdsView {
                algorithm: row.algorithm,
                p_open: match row.algorithm {
                    Algorithm::NegativeBinomial => {
                        row.opening.as_ref().and_then(|opening| opening.p_threshold)
                    }
                    Algorithm::Classic => None,
                },
                z_threshold: (row.algorithm == Algorithm::Classic).then_some(row.z_threshold),
                min_count: row.min_count,
                firing_count: row
                    .opening
                    .as_ref()
                    .and_then(|opening| opening.firing_count),
                dispersion: row.opening.as_ref().and_then(|opening| opening.dispersion),
                rhythm_rise: row.opening.as_ref().and_then(|opening| opening.rhythm_rise),
            },
            reopened_count: row.reopened_count,
        }
    }
}

/// One entry of an incident's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `opened`, `escalated`, `acknowledged`, `resolved` or `reopened`.
    #[schema(value_type = String)]
    pub kind: EventKind,
    pub actor: String,
    pub reason: String,
    pub z: Option<f64>,
    pub count: Option<i64>,
}

impl From<IncidentEventRow> for TimelineEntry {
    fn from(row: IncidentEventRow) -> Self {
        TimelineEntry {
            at: row.at,
            kind: row.kind,
            actor: row.actor,
            reason: row.reason,
            z: row.z,
            count: row.count,
        }
    }
}

/// An incident with its timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub timeline: Vec<TimelineEntry>,
    /// What the incident is made of; `null` until the detector has explained it (seconds
    /// after it opens), and for incidents opened before explanations existed.
    pub explanation: Option<ExplanationView>,
}

/// One side of an explanation: its time range and ERROR+ lines (estimated from the
/// rollups when more than were sampled).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationSideView {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// ERROR+ lines in the range.
    pub lines: u64,
    /// Lines sampled from them (at most `explain.sample_lines`, spread over the minutes).
    pub sampled: u64,
}

/// A message template's change between baseline and incident window.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternChangeView {
    /// The template; variable parts (numbers, ids, addresses, paths…) are `<*>`.
    pub template: String,
    /// Lines with this template in the window and in the baseline (estimates when the side
    /// was sampled).
    pub window_count: u64,
    pub baseline_count: u64,
    /// Share of the window over share of the baseline (an unseen template counts half a
    /// line); `null` when the baseline had no errors.
    pub lift: Option<f64>,
    /// Absent from the baseline's sample.
    pub new: bool,
    /// Its share rose beyond chance (two-proportion z ≥ 3), or the baseline had no errors.
    pub over_represented: bool,
    /// A window line with this template: its id, time (`GET /api/v1/logs?service=…&since=…`
    /// lists it) and first 500 characters.
    pub example_log_id: i64,
    pub example_ts: DateTime<Utc>,
    pub example_message: String,
}

/// An attribute value over-represented in the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeChangeView {
    /// Attribute key (`outer.inner` for one level of nesting).
    pub key: String,
    pub value: String,
    pub window_count: u64,
    pub baseline_count: u64,
    pub lift: Option<f64>,
    pub new: bool,
}

/// The message templates and attribute values that changed: the window is the incident's
/// minutes (at most the last `explain.max_window`), the baseline the `explain.baseline`
/// before its first minute, both ERROR+ lines. Templates over-represented in the window
/// come first (by lines in excess of the baseline's mix), then the rest by window lines;
/// attribute values are listed only when over-represented. At most ten of each.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationView {
    /// The stage it explains: the severity (`warning` or `critical`) and reopen count it
    /// was computed at.
    #[schema(value_type = String)]
    pub severity: Severity,
    pub reopened: i32,
    pub computed_at: DateTime<Utc>,
    pub window: ExplanationSideView,
    pub baseline: ExplanationSideView,
    /// What the attribute values were compared with: `errors` (the baseline's ERROR+
    /// lines), `all_levels` (every line of the baseline: it had fewer than 30 errors
    /// sampled) or `none` (the baseline was empty: values not every window line has).
    pub attribute_baseline: String,
    pub patterns: Vec<PatternChangeView>,
    pub attributes: Vec<AttributeChangeView>,
}

impl ExplanationView {
    /// The view of a stored explanation; `None` when its body does not read (written by a
    /// newer version).
    pub fn of(row: &store::explanations::ExplanationRow) -> Option<ExplanationView> {
        let body = row.explanation().ok()?;
        Some(ExplanationView {
            severity: row.severity,
            reopened: row.reopened,
            computed_at: row.computed_at,
            window: ExplanationSideView {
                from: row.window_from,
                until: row.window_until,
                lines: body.window.lines,
                sampled: body.window.sampled,
            },
            baseline: ExplanationSideView {
                from: row.baseline_from,
                until: row.baseline_until,
                lines: body.baseline.lines,
                sampled: body.baseline.sampled,
            },
            attribute_baseline: serde_json::to_value(body.attribute_baseline)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            patterns: body
                .patterns
                .into_iter()
                .map(|p| PatternChangeView {
                    template: p.template,
                    window_count: p.window_count,
                    baseline_count: p.baseline_count,
                    lift: p.lift,
                    new: p.new,
                    over_represented: p.over_represented,
                    example_log_id: p.example_log_id,
                    example_ts: p.example_ts,
                    example_message: p.example_message,
                })
                .collect(),
            attributes: body
                .attributes
                .into_iter()
                .map(|a| AttributeChangeView {
                    key: a.key,
                    value: a.value,
                    window_count: a.window_count,
                    baseline_count: a.baseline_count,
                    lift: a.lift,
                    new: a.new,
                })
                .collect(),
        })
    }
}

/// A stored log event.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogView {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub service: String,
    pub level: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

impl From<LogRow> for LogView {
    fn from(row: LogRow) -> Self {
        LogView {
            id: row.id,
            ts: row.ts,
            received_at: row.received_at,
            service: row.service,
            level: domain::Level::from_i16(row.level)
                .map_or_else(|| row.level.to_string(), |level| level.as_str().to_owned()),
            message: row.message,
            attributes: row.attributes,
            trace_id: row.trace_id,
            span_id: row.span_id,
        }
    }
}
