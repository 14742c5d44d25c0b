//! Rows as PostgreSQL holds them. Incident states are the domain's enums, stored by name in
//! `text` columns through [`Stored`]: a name the domain does not know is a typed error when
//! the row is read, not a panic or a string that travels on.

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Jsonb;
use domain::detection::Algorithm;
use domain::{EventKind, Severity, Signal, Status};
use serde::{Deserialize, Serialize};

use crate::enums::Stored;
use crate::schema::{incident_events, incidents, logs};

/// One incident row.
#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = incidents, check_for_backend(diesel::pg::Pg))]
pub struct IncidentRow {
    pub id: i64,
    pub service: String,
    #[diesel(deserialize_as = Stored<Signal>)]
    pub signal: Signal,
    #[diesel(deserialize_as = Stored<Status>)]
    pub status: Status,
    #[diesel(deserialize_as = Stored<Severity>)]
    pub severity: Severity,
    pub title: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub last_evaluated_at: DateTime<Utc>,
    pub first_minute: DateTime<Utc>,
    pub last_fired_minute: DateTime<Utc>,
    pub current_z: f64,
    pub peak_z: f64,
    pub current_count: i64,
    pub current_total: i64,
    pub peak_count: i64,
    pub p_value: Option<f64>,
    pub baseline_mean: f64,
    pub baseline_stddev: f64,
    pub baseline_minutes: i32,
    pub baseline_total_mean: f64,
    #[diesel(deserialize_as = Stored<Algorithm>)]
    pub algorithm: Algorithm,
    pub z_threshold: f64,
    pub min_count: i64,
    pub reopened_count: i32,
    /// What opened it (NULL only for incidents opened before this was kept and without
    /// an opening in their timeline).
    pub opening: Option<OpeningEvidence>,
}

/// A new incident, as the detector opens it.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = incidents)]
pub struct NewIncident<'a> {
    pub service: &'a str,
    #[diesel(serialize_as = Stored<Signal>)]
    pub signal: Signal,
    #[diesel(serialize_as = Stored<Severity>)]
    pub severity: Severity,
    pub title: &'a str,
    pub opened_at: DateTime<Utc>,
    pub last_evaluated_at: DateTime<Utc>,
    pub first_minute: DateTime<Utc>,
    pub last_fired_minute: DateTime<Utc>,
    pub current_z: f64,
    pub peak_z: f64,
    pub current_count: i64,
    pub current_total: i64,
    pub peak_count: i64,
    pub p_value: Option<f64>,
    pub baseline_mean: f64,
    pub baseline_stddev: f64,
    pub baseline_minutes: i32,
    pub baseline_total_mean: f64,
    #[diesel(serialize_as = Stored<Algorithm>)]
    pub algorithm: Algorithm,
    pub z_threshold: f64,
    pub min_count: i64,
    pub opening: Option<OpeningEvidence>,
}

/// The evidence an incident opened with, kept while its current and peak figures move: the
/// `incidents.opening` jsonb document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AsExpression, FromSqlRow)]
#[diesel(sql_type = Jsonb)]
pub struct OpeningEvidence {
    /// Errors in the window that opened it.
    pub count: i64,
    pub z: f64,
    /// Errors the test expected in that window, and the standard deviation it measured `z`
    /// in (absent for incidents opened before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<f64>,
    /// The tail-probability threshold of the rule that fired (`p_open`; absent for the
    /// classic rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_threshold: Option<f64>,
    /// The smallest count that would have fired in that window against that baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing_count: Option<i64>,
    /// The service's learned dispersion the test floored its variance with, when it had a
    /// profile (variance over mean; 1 is Poisson).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispersion: Option<f64>,
    /// How many times its daily rhythm raised the recent baseline's level for that window,
    /// when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhythm_rise: Option<f64>,
    /// Set when it opened from data that arrived late: how many minutes after the last
    /// complete minute its window ended (`first_minute` ... `opened_at` shows the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_by_minutes: Option<i64>,
}

impl ToSql<Jsonb, Pg> for OpeningEvidence {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let value = serde_json::to_value(self)?;
        <serde_json::Value as ToSql<Jsonb, Pg>>::to_sql(&value, &mut out.reborrow())
    }
}

impl FromSql<Jsonb, Pg> for OpeningEvidence {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let value = <serde_json::Value as FromSql<Jsonb, Pg>>::from_sql(bytes)?;
        Ok(serde_json::from_value(value)?)
    }
}

/// One entry of an incident's timeline.
#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = incident_events, check_for_backend(diesel::pg::Pg))]
pub struct IncidentEventRow {
    pub id: i64,
    pub incident_id: i64,
    pub at: DateTime<Utc>,
    #[diesel(deserialize_as = Stored<EventKind>)]
    pub kind: EventKind,
    pub actor: String,
    pub reason: String,
    pub z: Option<f64>,
    pub count: Option<i64>,
}

/// A new timeline entry.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = incident_events)]
pub struct NewIncidentEvent<'a> {
    pub incident_id: i64,
    pub at: DateTime<Utc>,
    #[diesel(serialize_as = Stored<EventKind>)]
    pub kind: EventKind,
    pub actor: &'a str,
    pub reason: &'a str,
    pub z: Option<f64>,
    pub count: Option<i64>,
}

/// One stored log event.
#[derive(Queryable, Selectable, Debug, Clone, PartialEq)]
#[diesel(table_name = logs, check_for_backend(diesel::pg::Pg))]
pub struct LogRow {
    pub ts: DateTime<Utc>,
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub service: String,
    pub level: i16,
    pub message: String,
    pub attributes: serde_json::Value,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

/// Errors and all events of one service in one minute, summed over levels and shards.
#[derive(Queryable, Debug, Clone, PartialEq, Eq)]
pub struct MinuteCountRow {
    pub service: String,
    pub minute: DateTime<Utc>,
    pub errors: Option<i64>,
    pub total: Option<i64>,
}
