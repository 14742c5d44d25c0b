//! Rows as PostgreSQL holds them. Incident states are the domain's enums, stored by name in
//! `text` columns through [`Stored`]: a name the domain does not know is a typed error when
//! the row is read, not a panic or a string that travels on.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::detection::Algorithm;
use domain::{EventKind, Severity, Signal, Status};

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
