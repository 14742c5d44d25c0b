//! The evaluation of one service at one tick: every signal's lifecycle, fed from the
//! incidents known so far, and the rule between signals that one burst pages once. The live
//! detector feeds it rows from PostgreSQL, replay its in-memory book; neither decides
//! anything itself.

use std::rc::Rc;

use super::assessment::Assessment;
use super::baseline::Baseline;
use super::config::DetectionConfig;
use super::lifecycle::{ActiveIncident, Baselines, Evaluation, Transition, evaluate_with};
use super::series::{Anomalies, MinuteSeries};
use crate::incident::{Severity, Signal, Status};
use crate::time::Minute;

/// What the service evaluation needs to know about an incident (live: from its row; replay:
/// from memory).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSnapshot {
    pub id: i64,
    pub signal: Signal,
    pub status: Status,
    pub first_minute: Minute,
    pub last_fired: Minute,
    pub severity: Severity,
    pub peak_z: f64,
    /// The most errors any window held it open with.
    pub peak_count: u64,
    /// The errors of the window that opened it.
    pub opening_count: Option<u64>,
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

/// What the evaluation of one service at one tick looks at.
#[derive(Clone, Copy, Debug)]
pub struct ServiceInput<'a> {
    pub series: &'a MinuteSeries,
    /// This service's active incidents and those resolved within the reopen window.
    pub incidents: &'a [IncidentSnapshot],
    /// Minutes judged anomalous (see `ServiceBook`): left out of baselines.
    pub anomalies: &'a Anomalies,
    /// Complete minutes before the last one whose counts arrived late (see `ServiceBook`).
    pub late: &'a [Minute],
    /// The current (partial) minute.
    pub now: Minute,
}

/// Evaluates every signal of one service.
///
/// Signals are evaluated error_count first. An error_rate incident is not opened while the
/// service has an error_count incident active or opening: one burst pages once. (An
/// error_rate incident already open carries on with its own lifecycle.)
pub fn evaluate_service(config: &DetectionConfig, input: ServiceInput<'_>) -> Vec<Decision> {
    let ServiceInput {
        series,
        incidents,
        anomalies,
        late,
        now,
    } = input;
    // The newest minute that fired for a resolved incident: spent evidence for every signal.
    let settled = incidents
        .iter()
        .filter(|incident| !incident.status.is_active())
        .map(|incident| incident.last_fired)
        .max();
    // Every signal judges the same buckets against the same baselines: summarised once.
    let mut known: Vec<(Minute, Option<Rc<Baselines>>)> = Vec::new();
    let mut baselines = |minute: Minute| {
        if let Some((_, baselines)) = known.iter().find(|(at, _)| *at == minute) {
            return baselines.clone();
        }
        let baselines = Baselines::before(config, series, minute, anomalies).map(Rc::new);
        known.push((minute, baselines.clone()));
        baselines
    };
    let mut count_engaged = false;
    let mut decisions = Vec::with_capacity(config.signals().len());
    for &signal in config.signals() {
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
        let mut transition = evaluate_with(
            config,
            Evaluation {
                signal,
                series,
                now,
                active: active_state.as_ref(),
                last_resolved: last_resolved.map(|(at, _)| at),
                settled,
                late,
                anomalies,
            },
            &mut baselines,
        );
        match signal {
            Signal::ErrorCount => {
                count_engaged = active.is_some()
                    || matches!(transition, Transition::Open(_) | Transition::Reopen(_));
            }
            Signal::ErrorRate => {
                if count_engaged
                    && matches!(transition, Transition::Open(_) | Transition::Reopen(_))
                {
                    transition = Transition::Quiet;
                }
            }
        }
        let incident_id = match &transition {
            Transition::Reopen(_) => last_resolved.map(|(_, id)| id),
            _ => active.map(|incident| incident.id),
        };
        decisions.push(Decision {
            signal,
            transition,
            incident_id,
        });
    }
    decisions
}

/// A one-line human title for an incident, rewritten as it evolves: the current evidence
/// with the spread the test measured it in, and once the incident has moved on, its peak
/// and what it opened with (`history`: peak errors and opening errors).
pub fn title(
    service: &str,
    signal: Signal,
    current: &Assessment,
    history: Option<(u64, u64)>,
) -> String {
    let minutes = current.minute.since(current.first) + 1;
    let per = if minutes == 1 {
        "/min".to_owned()
    } else {
        format!(" in {minutes} min")
    };
    let history = history.map_or_else(String::new, |(peak, opened_with)| {
        format!("; peak {peak}, opened at {opened_with}")
    });
    match signal {
        Signal::ErrorCount => format!(
            "{service}: {} errors{per} (expected {:.1} ± {:.1}, z = {:.1}{history})",
            current.count, current.expected, current.spread, current.z
        ),
        Signal::ErrorRate => {
            let baseline = &current.baseline;
            let now = current.ratio().unwrap_or(0.0) * 100.0;
            let before = if baseline.total_mean > 0.0 {
                baseline.mean / baseline.total_mean * 100.0
            } else {
                0.0
            };
            format!(
                "{service}: error rate {now:.1}% ({} of {} events; baseline {before:.2}%, z = {:.1}{history})",
                current.count, current.total, current.z
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::series::fixtures::series_of;

    fn at(series: &MinuteSeries, now: Minute) -> Vec<Decision> {
        evaluate_service(
            &DetectionConfig::default(),
            ServiceInput {
                series,
                incidents: &[],
                anomalies: &Anomalies::new(),
                late: &[],
                now,
            },
        )
    }

    fn opened(decisions: &[Decision]) -> Vec<Signal> {
        decisions
            .iter()
            .filter(|d| matches!(d.transition, Transition::Open(_)))
            .map(|d| d.signal)
            .collect()
    }

    #[test]
    fn a_burst_pages_once() {
        let mut minutes: Vec<(u64, u64)> = (0..40).map(|i| (2 + i % 3, 40)).collect();
        minutes[39] = (80, 120);
        let decisions = at(&series_of(&minutes), Minute(39));
        assert_eq!(opened(&decisions), [Signal::ErrorCount]);
    }

    #[test]
    fn fewer_requests_with_the_same_errors_is_an_error_rate_incident() {
        // 20,000 events a minute at 0.5%; then traffic falls to 4,000 but errors do not.
        let mut minutes: Vec<(u64, u64)> = (0..40).map(|i| (95 + i % 11, 20_000)).collect();
        minutes[39] = (100, 4_000);
        let decisions = at(&series_of(&minutes), Minute(39));
        assert_eq!(opened(&decisions), [Signal::ErrorRate]);
    }
}
