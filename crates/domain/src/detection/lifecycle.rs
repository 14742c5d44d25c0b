//! The incident lifecycle of one service and signal as a pure state machine: [`evaluate`]
//! judges the latest buckets (and minutes whose counts arrived late) and decides a
//! [`Transition`] (quiet, open, reopen, update or resolve).

use std::rc::Rc;

use super::assessment::{Assessment, assess, assess_rate, assess_window};
use super::baseline::{Baseline, Reach};
use super::config::{Algorithm, DetectionConfig};
use super::series::{Anomalies, MinuteSeries};
use crate::incident::{Severity, Signal, Status};
use crate::time::Minute;

/// The detector's memory of an active (open or acknowledged) incident.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveIncident {
    pub status: Status,
    /// The last minute whose bucket held the incident open.
    pub last_fired: Minute,
    pub severity: Severity,
    pub peak_z: f64,
    /// The baseline in force when it opened; frozen, so the incident never becomes its own
    /// baseline.
    pub baseline: Baseline,
}

/// What the lifecycle decided for one service and signal at one tick.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// Nothing active and nothing firing.
    Quiet,
    /// Nothing active and a bucket fired: open a new incident.
    Open(Assessment),
    /// Nothing active, a bucket fired, and an incident resolved within `reopen_window`:
    /// reopen it instead of opening a duplicate.
    Reopen(Assessment),
    /// An incident is active and stays so; `current` is the strongest evidence now.
    Update {
        current: Assessment,
        /// The newest minute that held the incident open (unchanged when none did now).
        last_fired: Minute,
        /// Set when the evidence now warrants a higher severity.
        escalate_to: Option<Severity>,
    },
    /// An incident is active and has been quiet for `resolve_after` complete minutes.
    Resolve { current: Assessment },
}

/// Everything [`evaluate`] looks at for one service and signal.
#[derive(Clone, Copy, Debug)]
pub struct Evaluation<'a> {
    pub signal: Signal,
    pub series: &'a MinuteSeries,
    /// The current (partial) minute; the minute before it is the last complete one.
    pub now: Minute,
    pub active: Option<&'a ActiveIncident>,
    /// The minute the newest incident of this service and signal resolved, if any.
    pub last_resolved: Option<Minute>,
    /// The newest minute that already fired for a resolved incident of this service (any
    /// signal). It and the minutes before it are spent evidence: they never open or reopen
    /// an incident again (an operator's resolve is not undone by the burst it resolved);
    /// only evidence after it does.
    pub settled: Option<Minute>,
    /// Complete minutes before the last one whose counts changed since they were judged,
    /// within the lateness window: judged again, and may open an incident.
    pub late: &'a [Minute],
    /// Minutes judged anomalous, left out of baselines.
    pub anomalies: &'a Anomalies,
}

/// A window longer than a minute and the signals that judge it.
#[derive(Clone, Copy)]
struct Window {
    minutes: u32,
    counts: bool,
    ratios: bool,
}

/// The longer windows: the count test judges the last two minutes together (a rise spread
/// over a minute boundary, or sustained but moderate, shows there first); the error-ratio
/// test two, three and five minutes (errors that carry on while traffic falls away are a
/// few a minute at low rates, too few for any minute alone, but plain over a few minutes).
const WINDOWS: [Window; 3] = [
    Window {
        minutes: 2,
        counts: true,
        ratios: true,
    },
    Window {
        minutes: 3,
        counts: false,
        ratios: true,
    },
    Window {
        minutes: 5,
        counts: false,
        ratios: true,
    },
];

/// The baselines a verdict on a bucket needs: the minutes before it, and for each longer
/// window (see [`WINDOWS`]) the minutes before that window. Each with the dispersion of its
/// error ratio.
pub(super) struct Baselines {
    single: (Baseline, f64),
    /// Each longer window with its baseline and rate dispersion, shortest first.
    windows: Vec<(Window, Baseline, f64)>,
    /// An active incident's frozen baseline: error counts judge the minute alone.
    frozen: bool,
    /// How far the single-minute baseline reached.
    pub(super) reach: Reach,
}

impl Baselines {
    /// Baselines from the series, or `None` when too little history precedes the bucket.
    pub(super) fn before(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        anomalies: &Anomalies,
    ) -> Option<Baselines> {
        // The day's rhythm, where learned, raises what the minutes before a window lead one
        // to expect within it.
        let raised = |baseline: Baseline, first: Minute| match &config.rhythm {
            Some(rhythm) => baseline.raised(rhythm.rise(first, bucket, config.baseline_minutes)),
            None => baseline,
        };
        let (sums, reach) = Baseline::sums_before(config, series, bucket, anomalies)?;
        let single = (raised(sums.baseline(), bucket), sums.rate_dispersion());
        let windows = WINDOWS
            .iter()
            .filter(|window| window.counts || config.signals().contains(&Signal::ErrorRate))
            .filter_map(|&window| {
                let first = bucket.minus(i64::from(window.minutes) - 1);
                Baseline::sums_before(config, series, first, anomalies).map(|(sums, _)| {
                    (
                        window,
                        raised(sums.baseline(), first),
                        sums.rate_dispersion(),
                    )
                })
            })
            .collect();
        Some(Baselines {
            single,
            windows,
            frozen: false,
            reach,
        })
    }

    /// The baseline of the minute alone.
    pub(super) fn single(&self) -> &Baseline {
        &self.single.0
    }

    /// The frozen baseline of an active incident. Error counts keep an incident alive only
    /// by single minutes: a two-minute window still holding the last firing minute would
    /// delay resolution by a minute without new evidence. Error ratios keep it alive by
    /// their windows too: an incident opened by five minutes of a few errors each, none
    /// enough alone, would otherwise resolve while they carry on, and reopen, and resolve.
    fn frozen(baseline: Baseline) -> Baselines {
        // The dispersion is not kept with the incident; assuming none keeps it open
        // rather than closing it early.
        Baselines {
            single: (baseline, 1.0),
            windows: WINDOWS
                .iter()
                .map(|&window| (window, baseline, 1.0))
                .collect(),
            frozen: true,
            reach: Reach::Window,
        }
    }
}

/// Every verdict on `bucket` for `signal`, shortest window first: the minute alone, and the
/// longer windows ending at it that the signal judges (see [`WINDOWS`]).
pub(super) fn judge(
    config: &DetectionConfig,
    signal: Signal,
    series: &MinuteSeries,
    bucket: Minute,
    baselines: &Baselines,
) -> Vec<Assessment> {
    let (errors, total) = (series.errors(bucket), series.totals(bucket));
    let (baseline, dispersion) = &baselines.single;
    let sums = |window: u32| {
        (0..i64::from(window)).map(|back| bucket.minus(back)).fold(
            (0, 0),
            |(errors, total), minute| {
                (
                    errors + series.errors(minute),
                    total + series.totals(minute),
                )
            },
        )
    };
    match (signal, config.algorithm) {
        (Signal::ErrorRate, _) => std::iter::once((1, baseline, *dispersion))
            .chain(
                baselines
                    .windows
                    .iter()
                    .filter(|(window, _, _)| window.ratios)
                    .map(|(window, baseline, dispersion)| (window.minutes, baseline, *dispersion)),
            )
            .map(|(window, baseline, dispersion)| {
                let (errors, total) = sums(window);
                assess_rate(
                    config,
                    bucket,
                    window,
                    errors,
                    total,
                    baseline,
                    dispersion.max(config.ratio_dispersion(window)),
                )
            })
            .collect(),
        (Signal::ErrorCount, Algorithm::Classic) => {
            vec![assess(config, bucket, errors, total, baseline)]
        }
        (Signal::ErrorCount, Algorithm::NegativeBinomial) => {
            let mut verdicts = vec![assess_window(config, bucket, 1, errors, total, baseline)];
            if !baselines.frozen {
                for (window, baseline, _) in baselines.windows.iter().filter(|(w, _, _)| w.counts) {
                    let (errors, total) = sums(window.minutes);
                    verdicts.push(assess_window(
                        config,
                        bucket,
                        window.minutes,
                        errors,
                        total,
                        baseline,
                    ));
                }
            }
            verdicts
        }
    }
}

/// Runs one tick of the lifecycle: judges the last complete minute and the current partial
/// minute, so a burst that straddles a minute boundary or a tick is still seen, and the
/// minutes whose counts arrived late.
pub fn evaluate(config: &DetectionConfig, input: Evaluation<'_>) -> Transition {
    evaluate_with(config, input, &mut |minute| {
        Baselines::before(config, input.series, minute, input.anomalies).map(Rc::new)
    })
}

/// [`evaluate`], with the baselines of a bucket from `baselines` (the service's signals
/// share them: they are most of a tick's work).
pub(super) fn evaluate_with(
    config: &DetectionConfig,
    input: Evaluation<'_>,
    baselines: &mut dyn FnMut(Minute) -> Option<Rc<Baselines>>,
) -> Transition {
    let latest = [input.now.minus(1), input.now];
    match input.active {
        Some(active) => {
            // Late minutes are new evidence only after the last minute that held the
            // incident: older ones are already part of it (or of an episode before a
            // reopen) and never escalate it or stand as its current evidence.
            let buckets: Vec<Minute> = input
                .late
                .iter()
                .copied()
                .filter(|minute| *minute > active.last_fired)
                .chain(latest)
                .collect();
            // Judged against the baseline frozen when it opened, so an incident never
            // becomes its own baseline, and against the minute's own baseline too, which
            // leaves out every minute judged anomalous: only evidence that stands out
            // against both holds. Minutes of a lasting change of level that were never
            // anomalous themselves (a modest step, a morning ramp without a rhythm), or all
            // of them once the change has outlasted the look-back (`Reach::Unfiltered`: the
            // anomaly is the norm), become ordinary in the minute's own baseline; against
            // the frozen one alone they would hold the incident open until the level fell
            // again, and every burst on top of it would go unseen.
            let frozen = Baselines::frozen(active.baseline);
            let assessments: Vec<Assessment> = buckets
                .iter()
                .flat_map(|&minute| {
                    let mut verdicts = judge(config, input.signal, input.series, minute, &frozen);
                    if let Some(live) = baselines(minute) {
                        let against = judge(config, input.signal, input.series, minute, &live);
                        for verdict in &mut verdicts {
                            verdict.holds &= against
                                .iter()
                                .any(|other| other.first == verdict.first && other.holds);
                        }
                    }
                    verdicts
                })
                .collect();
            let current = strongest(&assessments);
            let held = assessments
                .iter()
                .filter(|a| a.holds)
                .map(|a| a.minute)
                .max();
            let last_fired = held.map_or(active.last_fired, |m| m.max(active.last_fired));
            // A late minute that held only counts if it is newer than the last firing one.
            let quiet = input.now.minus(1).since(last_fired);
            if quiet >= i64::from(config.resolve_after) {
                return Transition::Resolve { current };
            }
            let escalate_to = assessments
                .iter()
                .filter(|a| a.holds && a.severity > active.severity)
                .map(|a| a.severity)
                .max();
            Transition::Update {
                current,
                last_fired,
                escalate_to,
            }
        }
        None => {
            let fresh = |assessment: &Assessment| {
                input
                    .settled
                    .is_none_or(|settled| assessment.first > settled)
            };
            let buckets: Vec<Minute> = input.late.iter().copied().chain(latest).collect();
            let fired: Vec<Assessment> = buckets
                .iter()
                .filter_map(|&minute| {
                    baselines(minute).map(|baselines| {
                        judge(config, input.signal, input.series, minute, &baselines)
                    })
                })
                .flatten()
                .filter(|a| a.fires && fresh(a))
                .collect();
            if fired.is_empty() {
                return Transition::Quiet;
            }
            // A minute that fires alone is the evidence: a two-minute window holding it
            // fires because of it (its other minute may be ordinary).
            let alone: Vec<Assessment> = fired
                .iter()
                .filter(|assessment| assessment.first == assessment.minute)
                .copied()
                .collect();
            let opening = strongest(if alone.is_empty() { &fired } else { &alone });
            let recent = input.last_resolved.is_some_and(|resolved| {
                opening.minute.since(resolved) <= i64::from(config.reopen_window)
            });
            if recent {
                Transition::Reopen(opening)
            } else {
                Transition::Open(opening)
            }
        }
    }
}

/// The strongest assessment: the smallest tail probability, else the highest z (the latest
/// one on ties).
fn strongest(assessments: &[Assessment]) -> Assessment {
    let strength = |a: &Assessment| (-a.p_value.unwrap_or(1.0), a.z);
    let mut best = assessments[0];
    for assessment in &assessments[1..] {
        if strength(assessment) >= strength(&best) {
            best = *assessment;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::series::fixtures::{series_of, series_with};
    use proptest::prelude::*;

    fn input(series: &MinuteSeries, now: i64) -> Evaluation<'_> {
        Evaluation {
            signal: Signal::ErrorCount,
            series,
            now: Minute(now),
            active: None,
            last_resolved: None,
            settled: None,
            late: &[],
            anomalies: &NONE,
        }
    }

    static NONE: Anomalies = Anomalies::new();

    fn rate_input(series: &MinuteSeries, now: i64) -> Evaluation<'_> {
        Evaluation {
            signal: Signal::ErrorRate,
            ..input(series, now)
        }
    }

    #[test]
    fn a_resolved_burst_never_reopens_its_own_incident() {
        let config = DetectionConfig::default();
        let mut counts: Vec<u64> = (0..40).map(|i| 2 + (i % 3)).collect();
        counts[31] = 60;
        counts[32] = 3;
        let burst: Anomalies = [Minute(31)].into();
        let series = series_with(&counts);
        let resolved_now = |series, settled| Evaluation {
            last_resolved: Some(Minute(32)),
            settled,
            anomalies: &burst,
            ..input(series, 32)
        };
        // Without the rule, the minute that opened the incident (still in the last complete
        // minute) reopens it the moment an operator resolves it.
        assert!(matches!(
            evaluate(&config, resolved_now(&series, None)),
            Transition::Reopen(_)
        ));
        // Spent evidence, alone or inside a two-minute window, opens nothing.
        assert_eq!(
            evaluate(&config, resolved_now(&series, Some(Minute(31)))),
            Transition::Quiet
        );
        // New evidence after it does.
        counts[32] = 60;
        let series = series_with(&counts);
        let Transition::Reopen(again) = evaluate(&config, resolved_now(&series, Some(Minute(31))))
        else {
            panic!("a new burst after the resolve must reopen");
        };
        assert_eq!((again.first, again.minute), (Minute(32), Minute(32)));
    }

    #[test]
    fn a_burst_opens_and_quiet_minutes_resolve() {
        let config = DetectionConfig::default();
        let mut counts: Vec<u64> = (0..40).map(|i| 2 + (i % 3)).collect();
        counts[31] = 60;
        let series = series_with(&counts);
        let Transition::Open(opening) = evaluate(&config, input(&series, 31)) else {
            panic!("a burst of 60 against a mean of 3 must open");
        };
        assert_eq!(opening.minute, Minute(31));
        assert_eq!(opening.count, 60);
        assert_eq!(opening.severity, Severity::Critical);

        let active = ActiveIncident {
            status: Status::Open,
            last_fired: Minute(31),
            severity: opening.severity,
            peak_z: opening.z,
            baseline: opening.baseline,
        };
        let at = |now: i64| {
            evaluate(
                &config,
                Evaluation {
                    active: Some(&active),
                    ..input(&series, now)
                },
            )
        };
        // Four quiet complete minutes (32..=35) are not enough; five are.
        assert!(matches!(
            at(36),
            Transition::Update {
                last_fired: Minute(31),
                ..
            }
        ));
        assert!(matches!(at(37), Transition::Resolve { .. }));
    }

    #[test]
    fn a_burst_in_the_partial_minute_is_seen() {
        let config = DetectionConfig::default();
        let mut counts: Vec<u64> = (0..32).map(|i| 2 + (i % 3)).collect();
        counts[31] = 40;
        let series = series_with(&counts);
        assert!(matches!(
            evaluate(&config, input(&series, 31)),
            Transition::Open(Assessment {
                minute: Minute(31),
                ..
            })
        ));
    }

    #[test]
    fn recent_resolution_reopens() {
        let config = DetectionConfig::default();
        let mut counts: Vec<u64> = (0..40).map(|i| 2 + (i % 3)).collect();
        counts[39] = 60;
        let series = series_with(&counts);
        let recent = Evaluation {
            last_resolved: Some(Minute(20)),
            ..input(&series, 39)
        };
        assert!(matches!(evaluate(&config, recent), Transition::Reopen(_)));
        let long_ago = Evaluation {
            last_resolved: Some(Minute(2)),
            ..input(&series, 39)
        };
        assert!(matches!(evaluate(&config, long_ago), Transition::Open(_)));
    }

    #[test]
    fn stronger_evidence_escalates() {
        let config = DetectionConfig::classic();
        let mut counts: Vec<u64> = vec![10; 40];
        for (i, c) in counts.iter_mut().enumerate() {
            *c += (i % 2) as u64 * 4;
        }
        counts[39] = 40;
        let series = series_with(&counts);
        let active = ActiveIncident {
            status: Status::Acknowledged,
            last_fired: Minute(37),
            severity: Severity::Warning,
            peak_z: 3.5,
            baseline: Baseline::from_counts(&counts[..30]),
        };
        let transition = evaluate(
            &config,
            Evaluation {
                active: Some(&active),
                ..input(&series, 39)
            },
        );
        assert!(matches!(
            transition,
            Transition::Update {
                escalate_to: Some(Severity::Critical),
                last_fired: Minute(39),
                ..
            }
        ));
    }

    #[test]
    fn a_moderate_rise_over_two_minutes_is_caught_by_the_pair_window() {
        let config = DetectionConfig::default();
        // Mean 2 per minute; then 11 and 11: each minute alone is borderline, the pair is not.
        let mut minutes: Vec<(u64, u64)> = (0..40).map(|i| (1 + (i % 3), 100)).collect();
        minutes[38] = (11, 100);
        minutes[39] = (11, 100);
        let series = series_of(&minutes);
        let Transition::Open(opening) = evaluate(&config, input(&series, 39)) else {
            panic!("a sustained rise must open");
        };
        assert_eq!(opening.minute, Minute(39));
        assert_eq!(opening.first, Minute(38));
        assert_eq!(opening.count, 22);
    }

    #[test]
    fn an_error_ratio_jump_opens_an_error_rate_incident() {
        let config = DetectionConfig::default();
        // 2,000 events a minute at 0.5% errors, then 5%.
        let mut minutes: Vec<(u64, u64)> = (0..40).map(|i| (8 + (i % 5), 2_000)).collect();
        minutes[39] = (100, 2_000);
        let series = series_of(&minutes);
        let Transition::Open(opening) = evaluate(&config, rate_input(&series, 39)) else {
            panic!("0.5% to 5% must open an error_rate incident");
        };
        assert!((opening.ratio().unwrap() - 0.05).abs() < 1e-9);
    }

    #[test]
    fn errors_that_carry_on_while_traffic_falls_away_open_over_a_few_minutes() {
        let config = DetectionConfig::default();
        // 5 errors a minute in 100 events, then the other 95 fall to 15: no minute alone
        // says much (5 errors against ~1 expected, inside the count guard), but the minutes
        // together do, and only once the drop has lasted.
        let mut minutes: Vec<(u64, u64)> = (0..45).map(|i| (4 + (i % 3), 100)).collect();
        for minute in &mut minutes[40..45] {
            *minute = (5, 20);
        }
        let series = series_of(&minutes);
        assert_eq!(
            evaluate(&config, rate_input(&series, 40)),
            Transition::Quiet,
            "one minute of a drop is not yet evidence"
        );
        let opened = (41..45).find_map(|now| match evaluate(&config, rate_input(&series, now)) {
            Transition::Open(opening) => Some(opening),
            _ => None,
        });
        let opening = opened.expect("five minutes of errors carrying on must open");
        assert!(opening.first < opening.minute, "{opening:?}");
        assert!(opening.count > config.min_count);
        // Traffic and errors falling together (a night-time low) is not an incident.
        let mut minutes: Vec<(u64, u64)> = (0..45).map(|i| (20 + (i % 5), 400)).collect();
        for (i, minute) in minutes[40..45].iter_mut().enumerate() {
            *minute = (4 + i as u64 % 2, 80);
        }
        let series = series_of(&minutes);
        for now in 40..45 {
            assert_eq!(
                evaluate(&config, rate_input(&series, now)),
                Transition::Quiet
            );
        }
    }

    #[test]
    fn traffic_doubling_at_the_same_ratio_is_not_an_error_rate_incident() {
        let config = DetectionConfig::default();
        let mut minutes: Vec<(u64, u64)> = (0..40).map(|i| (8 + (i % 5), 2_000)).collect();
        minutes[38] = (21, 4_000);
        minutes[39] = (20, 4_000);
        let series = series_of(&minutes);
        assert_eq!(
            evaluate(&config, rate_input(&series, 39)),
            Transition::Quiet
        );
    }

    proptest! {
        #[test]
        fn quiet_series_never_open(level in 0u64..30, now in 31i64..60) {
            // A perfectly steady series with spread below the guard never fires.
            let counts: Vec<u64> = (0..60).map(|i| level + (i % 2)).collect();
            let series = series_with(&counts);
            let transition = evaluate(&DetectionConfig::default(), input(&series, now));
            prop_assert_eq!(transition, Transition::Quiet);
        }
    }
}
