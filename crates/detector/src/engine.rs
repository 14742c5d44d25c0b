//! The evaluation both the live loop and `replay` run: for one service at one tick, gather
//! what the domain lifecycle needs from the incidents known so far, and ask it what to do.
//! The live loop feeds it rows from PostgreSQL, replay feeds it its in-memory book; neither
//! decides anything itself.

use domain::detection::{
    ActiveIncident, Baseline, Evaluation, MinuteSeries, MinuteSpan, Transition,
};
use domain::{DetectionConfig, Minute, Severity, Signal, Status};

/// The signals the detector evaluates.
pub const SIGNALS: [Signal; 1] = [Signal::ErrorCount];

/// What the engine needs to know about an incident (live: from its row; replay: from
/// memory).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSnapshot {
    pub id: i64,
    pub signal: Signal,
    pub status: Status,
    pub first_minute: Minute,
    pub last_fired: Minute,
    pub severity: Severity,
    pub peak_z: f64,
    pub baseline: Baseline,
    pub resolved_at: Option<Minute>,
}

/// One decision of one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub signal: Signal,
    pub transition: Transition,
    /// The incident the transition applies to (active, or the one to reopen).
    pub incident_id: Option<i64>,
}

/// Evaluates every signal of one service. `incidents` are this service's active incidents
/// and those resolved recently enough to matter (reopen window, baseline exclusion).
pub fn evaluate_service(
    config: &DetectionConfig,
    series: &MinuteSeries,
    incidents: &[IncidentSnapshot],
    now: Minute,
) -> Vec<Decision> {
    SIGNALS
        .iter()
        .map(|&signal| {
            let of_signal = || {
                incidents
                    .iter()
                    .filter(move |incident| incident.signal == signal)
            };
            let active = of_signal().find(|incident| incident.status.is_active());
            let active_state = active.map(|incident| ActiveIncident {
                status: incident.status,
                last_fired: incident.last_fired,
                severity: incident.severity,
                peak_z: incident.peak_z,
                baseline: incident.baseline,
            });
            let last_resolved = of_signal()
                .filter(|incident| !incident.status.is_active())
                .filter_map(|incident| incident.resolved_at.map(|at| (at, incident.id)))
                .max();
            let excluded: Vec<MinuteSpan> = of_signal()
                .map(|incident| MinuteSpan {
                    first: incident.first_minute,
                    last: incident.last_fired,
                })
                .collect();
            let transition = domain::evaluate(
                config,
                Evaluation {
                    signal,
                    series,
                    now,
                    active: active_state.as_ref(),
                    last_resolved: last_resolved.map(|(at, _)| at),
                    excluded: &excluded,
                },
            );
            let incident_id = match &transition {
                Transition::Reopen(_) => last_resolved.map(|(_, id)| id),
                _ => active.map(|incident| incident.id),
            };
            Decision {
                signal,
                transition,
                incident_id,
            }
        })
        .collect()
}

/// A one-line human title for an incident.
pub fn title(service: &str, signal: Signal, count: u64, z: f64, baseline: &Baseline) -> String {
    match signal {
        Signal::ErrorCount => format!(
            "{service}: {count} errors/min (z = {z:.1}; baseline {:.1} ± {:.1}/min)",
            baseline.mean, baseline.stddev
        ),
        Signal::ErrorRate => format!("{service}: error rate up (z = {z:.1})"),
    }
}
