//! Incidents and their timeline: every state change is one conditional statement plus its
//! timeline entry in one transaction, so any number of detectors (and operators) can race
//! on the same incident and each transition still happens, and is recorded, exactly once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::{EventKind, Severity, Signal, Status};

use crate::enums::Stored;
use crate::error::{StoreError, StoreResult};
use crate::models::{IncidentEventRow, IncidentRow, NewIncident, NewIncidentEvent};
use crate::schema::{incident_events, incidents};
use crate::scope::{Scope, scoped};

#[diesel::declare_sql_function]
extern "SQL" {
    /// PostgreSQL's `greatest(a, b)`.
    fn greatest<T: diesel::sql_types::SqlType + diesel::sql_types::SingleValue>(a: T, b: T) -> T;
}

/// What the detector measured at one tick, written onto an incident.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub at: DateTime<Utc>,
    pub z: f64,
    pub count: i64,
    /// All events in the evaluated window.
    pub total: i64,
    pub p_value: Option<f64>,
}

/// Who did something to an incident and why; recorded in the timeline.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub reason: &'a str,
}

/// Opens an incident unless one is already active for its service and signal. Returns the
/// new id when this call opened it, `None` when another detector got there first.
pub async fn open(
    conn: &mut AsyncPgConnection,
    new: &NewIncident<'_>,
    actor: Actor<'_>,
) -> StoreResult<Option<i64>> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let id: Option<i64> = diesel::insert_into(incidents::table)
            .values(new.clone())
            .on_conflict((incidents::service, incidents::signal))
            .filter_target(incidents::status.ne(Stored(Status::Resolved)))
            .do_nothing()
            .returning(incidents::id)
            .get_result(conn)
            .await
            .optional()?;
        if let Some(id) = id {
            record(
                conn,
                id,
                new.opened_at,
                EventKind::Opened,
                actor,
                Some((new.current_z, new.current_count)),
            )
            .await?;
        }
        Ok(id)
    })
    .await
}

/// Reopens a resolved incident with fresh evidence. Returns false when it is not resolved
/// any more, or when another incident of its service and signal is already active.
pub async fn reopen(
    conn: &mut AsyncPgConnection,
    id: i64,
    measurement: Measurement,
    title: &str,
    fired_minute: DateTime<Utc>,
    severity: Severity,
    actor: Actor<'_>,
) -> StoreResult<bool> {
    let result = conn
        .transaction::<_, StoreError, _>(async |conn| {
            let reopened = diesel::update(incidents::table)
                .filter(incidents::id.eq(id))
                .filter(incidents::status.eq(Stored(Status::Resolved)))
                .set((
                    incidents::status.eq(Stored(Status::Open)),
                    incidents::resolved_at.eq(None::<DateTime<Utc>>),
                    incidents::resolved_by.eq(None::<String>),
                    incidents::acknowledged_at.eq(None::<DateTime<Utc>>),
                    incidents::acknowledged_by.eq(None::<String>),
                    incidents::reopened_count.eq(incidents::reopened_count + 1),
                    incidents::title.eq(title),
                    incidents::last_evaluated_at.eq(measurement.at),
                    incidents::last_fired_minute.eq(fired_minute),
                    incidents::current_z.eq(measurement.z),
                    incidents::current_count.eq(measurement.count),
                    incidents::current_total.eq(measurement.total),
                    incidents::p_value.eq(measurement.p_value),
                    incidents::severity.eq(Stored(severity)),
                    incidents::peak_z.eq(greatest(incidents::peak_z, measurement.z)),
                    incidents::peak_count.eq(greatest(incidents::peak_count, measurement.count)),
                ))
                .execute(conn)
                .await?;
            if reopened == 1 {
                record(
                    conn,
                    id,
                    measurement.at,
                    EventKind::Reopened,
                    actor,
                    Some((measurement.z, measurement.count)),
                )
                .await?;
            }
            Ok(reopened == 1)
        })
        .await;
    match result {
        Err(error) if error.is_unique_violation() => Ok(false),
        other => other,
    }
}

/// Writes the latest measurement (and the title that describes it) onto an active incident, moving its peak and its last
/// firing minute forward, and escalates its severity when asked (recording the escalation
/// only if this call changed it). Returns whether this call escalated it.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    measurement: Measurement,
    title: &str,
    last_fired_minute: DateTime<Utc>,
    escalate_to: Option<Severity>,
    actor: Actor<'_>,
) -> StoreResult<bool> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        diesel::update(incidents::table)
            .filter(incidents::id.eq(id))
            .filter(incidents::status.ne(Stored(Status::Resolved)))
            .set((
                incidents::title.eq(title),
                incidents::last_evaluated_at.eq(measurement.at),
                incidents::current_z.eq(measurement.z),
                incidents::current_count.eq(measurement.count),
                incidents::current_total.eq(measurement.total),
                incidents::p_value.eq(measurement.p_value),
                incidents::peak_z.eq(greatest(incidents::peak_z, measurement.z)),
                incidents::peak_count.eq(greatest(incidents::peak_count, measurement.count)),
                incidents::last_fired_minute
                    .eq(greatest(incidents::last_fired_minute, last_fired_minute)),
            ))
            .execute(conn)
            .await?;
        let mut escalated = false;
        if let Some(severity) = escalate_to {
            let escalated_rows = diesel::update(incidents::table)
                .filter(incidents::id.eq(id))
                .filter(incidents::status.ne(Stored(Status::Resolved)))
                .filter(incidents::severity.ne(Stored(severity)))
                .set(incidents::severity.eq(Stored(severity)))
                .execute(conn)
                .await?;
            if escalated_rows == 1 {
                escalated = true;
                record(
                    conn,
                    id,
                    measurement.at,
                    EventKind::Escalated,
                    actor,
                    Some((measurement.z, measurement.count)),
                )
                .await?;
            }
        }
        Ok(escalated)
    })
    .await
}

/// Resolves an active incident. Returns false if it was already resolved.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    id: i64,
    at: DateTime<Utc>,
    actor: Actor<'_>,
) -> StoreResult<bool> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let resolved = diesel::update(incidents::table)
            .filter(incidents::id.eq(id))
            .filter(incidents::status.ne(Stored(Status::Resolved)))
            .set((
                incidents::status.eq(Stored(Status::Resolved)),
                incidents::resolved_at.eq(at),
                incidents::resolved_by.eq(actor.name),
                incidents::last_evaluated_at.eq(at),
            ))
            .execute(conn)
            .await?;
        if resolved == 1 {
            record(conn, id, at, EventKind::Resolved, actor, None).await?;
        }
        Ok(resolved == 1)
    })
    .await
}

/// Acknowledges an open incident. Returns false if it was not open.
pub async fn acknowledge(
    conn: &mut AsyncPgConnection,
    id: i64,
    at: DateTime<Utc>,
    actor: Actor<'_>,
) -> StoreResult<bool> {
    conn.transaction::<_, StoreError, _>(async |conn| {
        let acknowledged = diesel::update(incidents::table)
            .filter(incidents::id.eq(id))
            .filter(incidents::status.eq(Stored(Status::Open)))
            .set((
                incidents::status.eq(Stored(Status::Acknowledged)),
                incidents::acknowledged_at.eq(at),
                incidents::acknowledged_by.eq(actor.name),
            ))
            .execute(conn)
            .await?;
        if acknowledged == 1 {
            record(conn, id, at, EventKind::Acknowledged, actor, None).await?;
        }
        Ok(acknowledged == 1)
    })
    .await
}

async fn record(
    conn: &mut AsyncPgConnection,
    incident_id: i64,
    at: DateTime<Utc>,
    kind: EventKind,
    actor: Actor<'_>,
    evidence: Option<(f64, i64)>,
) -> StoreResult<()> {
    diesel::insert_into(incident_events::table)
        .values(NewIncidentEvent {
            incident_id,
            at,
            kind,
            actor: actor.name,
            reason: actor.reason,
            z: evidence.map(|(z, _)| z),
            count: evidence.map(|(_, count)| count),
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// Active (open or acknowledged) incidents of the services of `scope`.
pub async fn active(conn: &mut AsyncPgConnection, scope: &Scope) -> StoreResult<Vec<IncidentRow>> {
    let query = incidents::table
        .filter(incidents::status.ne(Stored(Status::Resolved)))
        .select(IncidentRow::as_select())
        .into_boxed();
    Ok(scoped!(query, scope, incidents::service).load(conn).await?)
}

/// Incidents resolved at or after `since` (for reopening and for keeping their minutes out
/// of baselines), newest resolution first.
pub async fn resolved_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    scope: &Scope,
) -> StoreResult<Vec<IncidentRow>> {
    let query = incidents::table
        .filter(incidents::status.eq(Stored(Status::Resolved)))
        .filter(incidents::resolved_at.ge(since))
        .order(incidents::resolved_at.desc())
        .select(IncidentRow::as_select())
        .into_boxed();
    Ok(scoped!(query, scope, incidents::service).load(conn).await?)
}

/// The firing spans (`first_minute`, `last_fired_minute`) of the incidents of `services`
/// that fired at or after `since`, active or not: the minutes a service's profile leaves
/// out.
pub async fn firing_spans(
    conn: &mut AsyncPgConnection,
    services: &[String],
    since: DateTime<Utc>,
) -> StoreResult<Vec<(String, DateTime<Utc>, DateTime<Utc>)>> {
    Ok(incidents::table
        .filter(incidents::service.eq_any(services))
        .filter(incidents::last_fired_minute.ge(since))
        .select((
            incidents::service,
            incidents::first_minute,
            incidents::last_fired_minute,
        ))
        .load(conn)
        .await?)
}

/// Which incidents a page lists.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<StatusFilter>,
    pub service: Option<String>,
    pub signal: Option<Signal>,
    pub severity: Option<Severity>,
    /// Opened at or after.
    pub since: Option<DateTime<Utc>>,
    /// Opened before.
    pub until: Option<DateTime<Utc>>,
}

/// Which statuses an incident listing keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Is(Status),
    /// Open or acknowledged (read through the partial index of active incidents).
    Active,
}

/// One page of incidents, newest first, strictly after the keyset position `after`
/// (`opened_at`, `id`) of the previous page's last row. One query, whatever the page number.
pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &IncidentFilter,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> StoreResult<Vec<IncidentRow>> {
    let mut query = incidents::table
        .select(IncidentRow::as_select())
        .order((incidents::opened_at.desc(), incidents::id.desc()))
        .limit(limit)
        .into_boxed();
    match filter.status {
        Some(StatusFilter::Is(status)) => {
            query = query.filter(incidents::status.eq(Stored(status)));
        }
        // Spelt as the partial index's predicate, so the planner uses it.
        Some(StatusFilter::Active) => {
            query = query.filter(incidents::status.ne(Stored(Status::Resolved)));
        }
        None => {}
    }
    if let Some(service) = &filter.service {
        query = query.filter(incidents::service.eq(service.clone()));
    }
    if let Some(signal) = filter.signal {
        query = query.filter(incidents::signal.eq(Stored(signal)));
    }
    if let Some(severity) = filter.severity {
        query = query.filter(incidents::severity.eq(Stored(severity)));
    }
    if let Some(since) = filter.since {
        query = query.filter(incidents::opened_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(incidents::opened_at.lt(until));
    }
    if let Some((opened_at, id)) = after {
        // The redundant `opened_at <= $1` bounds the index scan, so a deep page starts where
        // the previous one ended instead of filtering every newer row.
        query = query.filter(
            incidents::opened_at
                .le(opened_at)
                .and(incidents::opened_at.lt(opened_at).or(incidents::id.lt(id))),
        );
    }
    Ok(query.load(conn).await?)
}

/// One incident.
pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> StoreResult<Option<IncidentRow>> {
    Ok(incidents::table
        .find(id)
        .select(IncidentRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// An incident's timeline, oldest first.
pub async fn timeline(
    conn: &mut AsyncPgConnection,
    incident_id: i64,
) -> StoreResult<Vec<IncidentEventRow>> {
    Ok(incident_events::table
        .filter(incident_events::incident_id.eq(incident_id))
        .order((incident_events::at.asc(), incident_events::id.asc()))
        .select(IncidentEventRow::as_select())
        .load(conn)
        .await?)
}
