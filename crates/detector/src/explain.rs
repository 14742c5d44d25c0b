//! Explanations of incidents: after a tick's transitions have committed, each active
//! incident without an explanation for its stage (its severity and reopen count) gets one:
//! bounded samples of its service's ERROR+ lines in the incident window and in the baseline
//! before it, compared by `domain::patterns::explain`, stored once
//! (`store::explanations::insert` does nothing when a replica stored it first).
//!
//! Opening never waits for this: the incident is already committed. A failure (database
//! unavailable) leaves the stage unexplained, so the next tick tries again; an incident
//! whose window holds no lines still gets its (empty) explanation and is not retried.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::patterns::Explanation;
use domain::patterns::explain::MIN_BASELINE_ERRORS;
use domain::{EventKind, Level, Minute};
use runtime::settings::duration;
use serde::{Deserialize, Serialize};
use store::StoreResult;
use store::explanations::{NewExplanation, sample};
use store::models::IncidentRow;

/// Templates and attribute values kept per explanation (the table's bound).
pub const EXPLANATION_ITEMS: usize = 10;

/// How explanations are computed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExplainSettings {
    /// Whether incidents get explanations.
    pub enabled: bool,
    /// Explanations computed per tick at most (the newest incidents first; the rest follow
    /// on the next ticks).
    pub per_tick: u32,
    /// Lines sampled from each side at most (window and baseline), spread over its minutes.
    pub sample_lines: u32,
    /// The window: the incident's minutes, at most this much of them (the latest).
    #[serde(with = "duration")]
    pub max_window: Duration,
    /// The baseline: this much time before the incident's first minute.
    #[serde(with = "duration")]
    pub baseline: Duration,
}

impl Default for ExplainSettings {
    fn default() -> Self {
        ExplainSettings {
            enabled: true,
            per_tick: 8,
            sample_lines: 2_000,
            max_window: Duration::from_secs(60 * 60),
            baseline: Duration::from_secs(60 * 60),
        }
    }
}

fn whole_minutes(value: Duration) -> TimeDelta {
    TimeDelta::minutes(
        i64::try_from(value.as_secs() / 60)
            .unwrap_or(i64::MAX / 120)
            .max(1),
    )
}

/// Computes the explanation of `incident`'s current stage.
pub async fn explain_incident(
    conn: &mut store::PooledConnection,
    incident: &IncidentRow,
    settings: &ExplainSettings,
    now: DateTime<Utc>,
) -> StoreResult<NewExplanation> {
    // A reopened incident is explained from its reopening: the burst that resolved is the
    // past, part of the baseline now.
    let mut start = incident.first_minute;
    if incident.reopened_count > 0
        && let Some(reopened) = store::incidents::timeline(conn, incident.id)
            .await?
            .iter()
            .rev()
            .find(|event| event.kind == EventKind::Reopened)
    {
        // The window that fired began at most two minutes before the minute it was seen.
        start = start.max(Minute::containing(reopened.at).minus(2).start());
    }
    let window_until = incident.last_fired_minute + TimeDelta::minutes(1);
    let window_from = start
        .min(incident.last_fired_minute)
        .max(window_until - whole_minutes(settings.max_window));
    let baseline_until = window_from;
    let baseline_from = baseline_until - whole_minutes(settings.baseline);
    let max_lines = i64::from(settings.sample_lines);
    let error = Level::Error.as_i16();
    let service = &incident.service;
    let window = sample(
        conn,
        service,
        (window_from, window_until),
        error,
        max_lines,
        true,
    )
    .await?;
    let baseline = sample(
        conn,
        service,
        (baseline_from, baseline_until),
        error,
        max_lines,
        true,
    )
    .await?;
    // Too few errors before: the values are compared with the service's traffic.
    let traffic = if baseline.lines.len() < MIN_BASELINE_ERRORS {
        let every = Level::Trace.as_i16();
        sample(
            conn,
            service,
            (baseline_from, baseline_until),
            every,
            max_lines,
            true,
        )
        .await?
    } else {
        store::explanations::Sample::default()
    };
    let body = domain::patterns::explain(
        &window.lines(),
        &baseline.lines(),
        &traffic.lines(),
        EXPLANATION_ITEMS,
    );
    Ok(NewExplanation {
        incident_id: incident.id,
        severity: incident.severity,
        reopened: incident.reopened_count,
        computed_at: now,
        window_from,
        // What it covers: the window's lines written by now (a burst's last minute may
        // still be arriving when the incident opens).
        window_until: window_until.min(now),
        baseline_from,
        baseline_until,
        body,
    })
}

/// What a webhook carries of an explanation: the top three of each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExplanationDigest {
    pub patterns: Vec<domain::patterns::PatternChange>,
    pub attributes: Vec<domain::patterns::AttributeChange>,
}

impl From<Explanation> for ExplanationDigest {
    fn from(explanation: Explanation) -> Self {
        ExplanationDigest {
            patterns: explanation.patterns.into_iter().take(3).collect(),
            attributes: explanation.attributes.into_iter().take(3).collect(),
        }
    }
}
