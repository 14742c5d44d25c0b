//! Detection: baselines over zero-filled minute buckets, the per-bucket test, and the
//! incident lifecycle as a pure state machine.
//!
//! The live detector and `threesigma-detector replay` both call [`evaluate`]; they differ
//! only in where the counts come from (PostgreSQL rollups or a CSV file) and where the
//! resulting [`Transition`] goes (SQL or a JSON line).

use serde::{Deserialize, Serialize};

use crate::incident::{Severity, Signal, Status};
use crate::time::Minute;

/// The sentinel z-score of the original design when the baseline has no spread.
pub const SIGMA_ZERO_Z: f64 = 999.0;

/// Which decision rule opens incidents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// The original rule: z > `z_threshold` and count > `min_count`, population σ over the
    /// zero-filled baseline, σ = 0 giving z = 999.
    Classic,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Classic => "classic",
        }
    }
}

/// Thresholds and windows of detection. Durations are in whole minutes because detection
/// works in minute buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionConfig {
    pub algorithm: Algorithm,
    /// z above which a bucket opens an incident.
    pub z_threshold: f64,
    /// z above which a bucket keeps an open incident alive (hysteresis: below `z_threshold`).
    pub stay_z: f64,
    /// Count a bucket must exceed to open or keep an incident (the original's guard).
    pub min_count: u64,
    /// z above which an incident is critical.
    pub critical_z: f64,
    /// Minutes before a bucket that form its baseline.
    pub baseline_minutes: u32,
    /// Fewest usable baseline minutes for a verdict; with fewer the bucket is not judged.
    pub min_baseline_minutes: u32,
    /// Consecutive quiet complete minutes after which an incident resolves itself.
    pub resolve_after: u32,
    /// Minutes after resolution during which a new firing reopens the incident.
    pub reopen_window: u32,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            algorithm: Algorithm::Classic,
            z_threshold: 3.0,
            stay_z: 2.0,
            min_count: 5,
            critical_z: 5.0,
            baseline_minutes: 30,
            min_baseline_minutes: 10,
            resolve_after: 5,
            reopen_window: 30,
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("detection.{0} must be greater than zero")]
    Zero(&'static str),
    #[error("detection.stay_z must not exceed detection.z_threshold")]
    StayAboveOpen,
    #[error("detection.min_baseline_minutes must not exceed detection.baseline_minutes")]
    MinBaselineTooLarge,
}

impl DetectionConfig {
    /// Checks the invariants the lifecycle relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.baseline_minutes == 0 {
            return Err(ConfigError::Zero("baseline_minutes"));
        }
        if self.min_baseline_minutes == 0 {
            return Err(ConfigError::Zero("min_baseline_minutes"));
        }
        if self.resolve_after == 0 {
            return Err(ConfigError::Zero("resolve_after"));
        }
        if self.min_baseline_minutes > self.baseline_minutes {
            return Err(ConfigError::MinBaselineTooLarge);
        }
        if self.stay_z > self.z_threshold {
            return Err(ConfigError::StayAboveOpen);
        }
        Ok(())
    }
}

/// Per-minute counts of one service, zero-filled: a minute with no row had no events.
#[derive(Clone, Debug, PartialEq)]
pub struct MinuteSeries {
    first: Minute,
    errors: Vec<u64>,
    totals: Vec<u64>,
    /// Minutes before this are unknown rather than quiet (the data starts here).
    history_start: Option<Minute>,
}

impl MinuteSeries {
    /// An all-zero series covering `first..=last`.
    pub fn new(first: Minute, last: Minute) -> MinuteSeries {
        let len = usize::try_from(last.since(first) + 1).unwrap_or(0);
        MinuteSeries {
            first,
            errors: vec![0; len],
            totals: vec![0; len],
            history_start: None,
        }
    }

    /// Marks minutes before `start` as unknown: they never count as quiet baseline minutes.
    pub fn with_history_start(mut self, start: Minute) -> MinuteSeries {
        self.history_start = Some(start);
        self
    }

    /// Adds counts to a minute; minutes outside the series are ignored.
    pub fn add(&mut self, minute: Minute, errors: u64, total: u64) {
        if let Some(index) = self.index(minute) {
            self.errors[index] += errors;
            self.totals[index] += total;
        }
    }

    pub fn first(&self) -> Minute {
        self.first
    }

    pub fn last(&self) -> Minute {
        self.first
            .plus(i64::try_from(self.errors.len()).unwrap_or(0) - 1)
    }

    pub fn errors(&self, minute: Minute) -> u64 {
        self.index(minute).map_or(0, |index| self.errors[index])
    }

    pub fn totals(&self, minute: Minute) -> u64 {
        self.index(minute).map_or(0, |index| self.totals[index])
    }

    fn index(&self, minute: Minute) -> Option<usize> {
        usize::try_from(minute.since(self.first))
            .ok()
            .filter(|index| *index < self.errors.len())
    }

    /// Whether `minute` is known: inside the series and not before the history start.
    fn is_known(&self, minute: Minute) -> bool {
        self.index(minute).is_some() && self.history_start.is_none_or(|start| minute >= start)
    }
}

/// An inclusive span of minutes (an incident's firing minutes, kept out of baselines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteSpan {
    pub first: Minute,
    pub last: Minute,
}

impl MinuteSpan {
    pub fn contains(&self, minute: Minute) -> bool {
        self.first <= minute && minute <= self.last
    }
}

/// What a bucket is compared with: the error counts of the minutes before it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// How many minutes it summarises.
    pub minutes: u32,
    /// Mean errors per minute.
    pub mean: f64,
    /// Population standard deviation of errors per minute.
    pub stddev: f64,
}

impl Baseline {
    /// Mean and population standard deviation of per-minute counts.
    pub fn from_counts(counts: &[u64]) -> Baseline {
        let n = counts.len();
        if n == 0 {
            return Baseline {
                minutes: 0,
                mean: 0.0,
                stddev: 0.0,
            };
        }
        let n_f = n as f64;
        let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / n_f;
        let variance = counts
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n_f;
        Baseline {
            minutes: u32::try_from(n).unwrap_or(u32::MAX),
            mean,
            stddev: variance.sqrt(),
        }
    }

    /// The baseline of `bucket`: the `baseline_minutes` before it, skipping unknown minutes
    /// and minutes inside `excluded` spans. `None` when fewer than `min_baseline_minutes`
    /// remain.
    pub fn for_bucket(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        excluded: &[MinuteSpan],
    ) -> Option<Baseline> {
        let counts: Vec<u64> = (1..=i64::from(config.baseline_minutes))
            .map(|back| bucket.minus(back))
            .filter(|minute| series.is_known(*minute))
            .filter(|minute| !excluded.iter().any(|span| span.contains(*minute)))
            .map(|minute| series.errors(minute))
            .collect();
        (counts.len() >= config.min_baseline_minutes as usize)
            .then(|| Baseline::from_counts(&counts))
    }
}

/// The z-score of `count` against `baseline`, with the original's σ = 0 sentinel.
pub fn z_score(count: u64, baseline: &Baseline) -> f64 {
    if baseline.stddev == 0.0 {
        SIGMA_ZERO_Z
    } else {
        (count as f64 - baseline.mean) / baseline.stddev
    }
}

/// The verdict on one minute bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub minute: Minute,
    /// Errors in the bucket.
    pub count: u64,
    /// All events in the bucket.
    pub total: u64,
    pub baseline: Baseline,
    pub z: f64,
    /// Tail probability of a count this high under the baseline, where the test has one.
    pub p_value: Option<f64>,
    /// Strong enough to open an incident.
    pub fires: bool,
    /// Strong enough to keep an open incident alive.
    pub holds: bool,
    pub severity: Severity,
}

/// Judges one bucket against a baseline.
pub fn assess(
    config: &DetectionConfig,
    minute: Minute,
    count: u64,
    total: u64,
    baseline: &Baseline,
) -> Assessment {
    let z = z_score(count, baseline);
    let guard = count > config.min_count;
    let (fires, holds, p_value) = match config.algorithm {
        Algorithm::Classic => (
            guard && z > config.z_threshold,
            guard && z > config.stay_z,
            None,
        ),
    };
    Assessment {
        minute,
        count,
        total,
        baseline: *baseline,
        z,
        p_value,
        fires,
        holds,
        severity: if z > config.critical_z {
            Severity::Critical
        } else {
            Severity::Warning
        },
    }
}

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
    /// An incident is active and stays so; `current` is the strongest bucket now.
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
    /// Firing spans of earlier incidents, left out of baselines.
    pub excluded: &'a [MinuteSpan],
}

/// Runs one tick of the lifecycle: judges the last complete minute and the current partial
/// minute, so a burst that straddles a minute boundary or a tick is still seen.
pub fn evaluate(config: &DetectionConfig, input: Evaluation<'_>) -> Transition {
    let buckets = [input.now.minus(1), input.now];
    let judge = |minute: Minute, baseline: &Baseline| {
        let count = match input.signal {
            Signal::ErrorCount | Signal::ErrorRate => input.series.errors(minute),
        };
        assess(config, minute, count, input.series.totals(minute), baseline)
    };

    match input.active {
        Some(active) => {
            let assessments = buckets.map(|minute| judge(minute, &active.baseline));
            let current = strongest(&assessments);
            let held = assessments
                .iter()
                .filter(|a| a.holds)
                .map(|a| a.minute)
                .max();
            let last_fired = held.map_or(active.last_fired, |m| m.max(active.last_fired));
            let quiet = input.now.minus(1).since(last_fired);
            if held.is_none() && quiet >= i64::from(config.resolve_after) {
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
            let fired: Vec<Assessment> = buckets
                .iter()
                .filter_map(|&minute| {
                    Baseline::for_bucket(config, input.series, minute, input.excluded)
                        .map(|baseline| judge(minute, &baseline))
                })
                .filter(|a| a.fires)
                .collect();
            if fired.is_empty() {
                return Transition::Quiet;
            }
            let opening = strongest(&fired);
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

/// The assessment with the highest z (the latest one on ties).
fn strongest(assessments: &[Assessment]) -> Assessment {
    let mut best = assessments[0];
    for assessment in &assessments[1..] {
        if assessment.z >= best.z {
            best = *assessment;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series_with(errors: &[u64]) -> MinuteSeries {
        let mut series = MinuteSeries::new(Minute(0), Minute(errors.len() as i64 - 1));
        for (i, &count) in errors.iter().enumerate() {
            series.add(Minute(i as i64), count, count * 10);
        }
        series
    }

    fn input(series: &MinuteSeries, now: i64) -> Evaluation<'_> {
        Evaluation {
            signal: Signal::ErrorCount,
            series,
            now: Minute(now),
            active: None,
            last_resolved: None,
            excluded: &[],
        }
    }

    #[test]
    fn population_mean_and_stddev() {
        let baseline = Baseline::from_counts(&[2, 4, 4, 4, 5, 5, 7, 9]);
        assert_eq!(baseline.mean, 5.0);
        assert_eq!(baseline.stddev, 2.0);
        assert_eq!(baseline.minutes, 8);
    }

    #[test]
    fn classic_rule_needs_both_z_and_count() {
        let config = DetectionConfig::default();
        let baseline = Baseline::from_counts(&[0, 1, 0, 1, 0, 1]);
        // mean 0.5, stddev 0.5: a count of 5 has z = 9 but does not exceed min_count.
        assert!(!assess(&config, Minute(0), 5, 5, &baseline).fires);
        assert!(assess(&config, Minute(0), 6, 6, &baseline).fires);
        let wide = Baseline::from_counts(&[0, 20, 0, 20]);
        // mean 10, stddev 10: 35 has z = 2.5.
        assert!(!assess(&config, Minute(0), 35, 35, &wide).fires);
        assert!(assess(&config, Minute(0), 41, 41, &wide).fires);
    }

    #[test]
    fn sigma_zero_gives_the_sentinel() {
        let flat = Baseline::from_counts(&[3; 30]);
        assert_eq!(z_score(3, &flat), SIGMA_ZERO_Z);
        let verdict = assess(&DetectionConfig::default(), Minute(0), 6, 6, &flat);
        assert!(verdict.fires);
        assert_eq!(verdict.severity, Severity::Critical);
    }

    #[test]
    fn empty_minutes_are_zero_not_missing() {
        // One error every third minute: the original SQL averaged only non-empty minutes
        // (mean 1, σ 0); zero-filled, the mean is 1/3.
        let counts: Vec<u64> = (0..31).map(|i| u64::from(i % 3 == 0)).collect();
        let series = series_with(&counts);
        let baseline =
            Baseline::for_bucket(&DetectionConfig::default(), &series, Minute(30), &[]).unwrap();
        assert_eq!(baseline.minutes, 30);
        assert!((baseline.mean - 10.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn unknown_history_and_excluded_minutes_are_left_out() {
        let config = DetectionConfig::default();
        let series = series_with(&[1; 40]).with_history_start(Minute(25));
        assert!(Baseline::for_bucket(&config, &series, Minute(30), &[]).is_none());
        let baseline = Baseline::for_bucket(&config, &series, Minute(39), &[]).unwrap();
        assert_eq!(baseline.minutes, 14);
        let excluded = [MinuteSpan {
            first: Minute(30),
            last: Minute(33),
        }];
        let baseline = Baseline::for_bucket(&config, &series, Minute(39), &excluded).unwrap();
        assert_eq!(baseline.minutes, 10);
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
        let config = DetectionConfig::default();
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
    fn config_invariants() {
        assert!(DetectionConfig::default().validate().is_ok());
        let bad = DetectionConfig {
            stay_z: 4.0,
            ..DetectionConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::StayAboveOpen));
        let bad = DetectionConfig {
            resolve_after: 0,
            ..DetectionConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("resolve_after")));
    }

    proptest! {
        #[test]
        fn mean_and_stddev_are_sane(counts in prop::collection::vec(0u64..10_000, 1..60)) {
            let baseline = Baseline::from_counts(&counts);
            let min = *counts.iter().min().unwrap() as f64;
            let max = *counts.iter().max().unwrap() as f64;
            prop_assert!(baseline.mean >= min - 1e-9 && baseline.mean <= max + 1e-9);
            prop_assert!(baseline.stddev >= 0.0);
            prop_assert!(baseline.stddev <= (max - min) / 2.0 + 1e-9);
        }

        #[test]
        fn z_grows_with_the_count(counts in prop::collection::vec(0u64..100, 2..40), a in 0u64..500, b in 0u64..500) {
            let baseline = Baseline::from_counts(&counts);
            prop_assume!(baseline.stddev > 0.0);
            let (low, high) = (a.min(b), a.max(b));
            prop_assert!(z_score(low, &baseline) <= z_score(high, &baseline));
        }

        #[test]
        fn the_classic_decision_is_the_original_formula(
            counts in prop::collection::vec(0u64..50, 30),
            count in 0u64..200,
        ) {
            let config = DetectionConfig::default();
            let baseline = Baseline::from_counts(&counts);
            let n = counts.len() as f64;
            let mean = counts.iter().sum::<u64>() as f64 / n;
            let sigma = (counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
            let z = if sigma == 0.0 { 999.0 } else { (count as f64 - mean) / sigma };
            let verdict = assess(&config, Minute(0), count, count, &baseline);
            prop_assert_eq!(verdict.fires, z > 3.0 && count > 5);
        }

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
