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
    /// zero-filled baseline, σ = 0 giving z = 999. Error counts only.
    Classic,
    /// A tail-probability test for counts: the chance of seeing at least this many errors
    /// under the baseline's predictive distribution (negative binomial whose variance is the
    /// observed variance when that exceeds the mean, never less than the mean, widened for
    /// the uncertainty of a 30-minute estimate), on the minute alone and on the last two
    /// minutes together; plus the error-rate signal.
    NegativeBinomial,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Classic => "classic",
            Algorithm::NegativeBinomial => "negative_binomial",
        }
    }
}

/// Thresholds and windows of detection. Durations are in whole minutes because detection
/// works in minute buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionConfig {
    pub algorithm: Algorithm,
    /// Classic: z above which a bucket opens an incident.
    pub z_threshold: f64,
    /// Classic: z above which a bucket keeps an open incident alive (hysteresis).
    pub stay_z: f64,
    /// Classic: z above which an incident is critical.
    pub critical_z: f64,
    /// Negative binomial: tail probability at or below which a bucket opens an incident.
    pub p_open: f64,
    /// Negative binomial: tail probability at or below which a bucket keeps an incident
    /// alive (hysteresis: above `p_open`).
    pub p_stay: f64,
    /// Negative binomial: tail probability at or below which an incident is critical.
    pub p_critical: f64,
    /// Negative binomial: the predictive variance is at least this multiple of the mean.
    /// 1 assumes Poisson counts unless the baseline shows otherwise; raise it for services
    /// whose errors come in clumps shorter than the baseline can show.
    pub min_dispersion: f64,
    /// Errors a bucket must exceed to open or keep an incident (the original's guard).
    pub min_count: u64,
    /// Error rate: the bucket's error ratio must be at least this multiple of the baseline
    /// ratio (an effect-size guard: at high traffic tiny ratio shifts are "significant"
    /// without mattering).
    pub rate_min_factor: f64,
    /// Whether the error-rate signal is evaluated (negative binomial algorithm only).
    pub error_rate: bool,
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
            algorithm: Algorithm::NegativeBinomial,
            z_threshold: 3.0,
            stay_z: 2.0,
            critical_z: 5.0,
            p_open: 1e-5,
            p_stay: 1e-3,
            p_critical: 1e-12,
            min_dispersion: 1.0,
            min_count: 5,
            rate_min_factor: 2.0,
            error_rate: true,
            baseline_minutes: 30,
            min_baseline_minutes: 10,
            resolve_after: 5,
            reopen_window: 30,
        }
    }
}

impl DetectionConfig {
    /// The original design's rule, for comparison.
    pub fn classic() -> DetectionConfig {
        DetectionConfig {
            algorithm: Algorithm::Classic,
            ..DetectionConfig::default()
        }
    }

    /// The signals this configuration evaluates.
    pub fn signals(&self) -> &'static [Signal] {
        match (self.algorithm, self.error_rate) {
            (Algorithm::NegativeBinomial, true) => &[Signal::ErrorCount, Signal::ErrorRate],
            _ => &[Signal::ErrorCount],
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
    #[error(
        "detection.p_open, p_stay and p_critical must be probabilities with p_critical <= p_open <= p_stay"
    )]
    Probabilities,
    #[error("detection.min_baseline_minutes must not exceed detection.baseline_minutes")]
    MinBaselineTooLarge,
    #[error("detection.rate_min_factor must be at least 1")]
    RateFactor,
    #[error("detection.min_dispersion must be at least 1")]
    Dispersion,
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
        let probability = |p: f64| p > 0.0 && p < 1.0;
        if !(probability(self.p_open)
            && probability(self.p_stay)
            && probability(self.p_critical)
            && self.p_critical <= self.p_open
            && self.p_open <= self.p_stay)
        {
            return Err(ConfigError::Probabilities);
        }
        if self.rate_min_factor.is_nan() || self.rate_min_factor < 1.0 {
            return Err(ConfigError::RateFactor);
        }
        if self.min_dispersion.is_nan() || self.min_dispersion < 1.0 {
            return Err(ConfigError::Dispersion);
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

/// What a bucket is compared with: the minutes before it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// How many minutes it summarises.
    pub minutes: u32,
    /// Mean errors per minute.
    pub mean: f64,
    /// Population standard deviation of errors per minute.
    pub stddev: f64,
    /// Mean events (all levels) per minute.
    pub total_mean: f64,
}

impl Baseline {
    /// Mean and population standard deviation of per-minute error counts (no totals).
    pub fn from_counts(counts: &[u64]) -> Baseline {
        let pairs: Vec<(u64, u64)> = counts.iter().map(|&c| (c, c)).collect();
        Baseline::from_minutes(&pairs)
    }

    /// The baseline of `(errors, total)` per minute.
    pub fn from_minutes(minutes: &[(u64, u64)]) -> Baseline {
        let n = minutes.len();
        if n == 0 {
            return Baseline {
                minutes: 0,
                mean: 0.0,
                stddev: 0.0,
                total_mean: 0.0,
            };
        }
        let n_f = n as f64;
        let mean = minutes.iter().map(|&(e, _)| e as f64).sum::<f64>() / n_f;
        let total_mean = minutes.iter().map(|&(_, t)| t as f64).sum::<f64>() / n_f;
        let variance = minutes
            .iter()
            .map(|&(e, _)| (e as f64 - mean).powi(2))
            .sum::<f64>()
            / n_f;
        Baseline {
            minutes: u32::try_from(n).unwrap_or(u32::MAX),
            mean,
            stddev: variance.sqrt(),
            total_mean,
        }
    }

    /// The `(errors, total)` of the usable minutes before `bucket`: up to
    /// `baseline_minutes`, skipping unknown minutes and minutes inside `excluded` spans.
    fn minutes_before(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        excluded: &[MinuteSpan],
    ) -> Vec<(u64, u64)> {
        (1..=i64::from(config.baseline_minutes))
            .map(|back| bucket.minus(back))
            .filter(|minute| series.is_known(*minute))
            .filter(|minute| !excluded.iter().any(|span| span.contains(*minute)))
            .map(|minute| (series.errors(minute), series.totals(minute)))
            .collect()
    }

    /// The baseline of `bucket`, or `None` when fewer than `min_baseline_minutes` usable
    /// minutes precede it.
    pub fn for_bucket(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        excluded: &[MinuteSpan],
    ) -> Option<Baseline> {
        let minutes = Baseline::minutes_before(config, series, bucket, excluded);
        (minutes.len() >= config.min_baseline_minutes as usize)
            .then(|| Baseline::from_minutes(&minutes))
    }

    /// The predictive distribution of the error count of a `window`-minute sum, as
    /// (mean, variance). The mean is smoothed by half an event, so an all-zero baseline still
    /// has a finite expectation. The variance is the mean (Poisson) unless the baseline is
    /// significantly over-dispersed — its index of dispersion (n−1)s²/mean beyond the 95th
    /// percentile of χ²(n−1) — in which case it is the sample variance: a Poisson baseline's
    /// sample variance is noisy, and taking the larger of the two every time would blunt
    /// the test for no reason. Either way it is widened by 1/n for the uncertainty of an
    /// n-minute estimate.
    pub fn predictive(&self, window: u32, min_dispersion: f64) -> (f64, f64) {
        let n = f64::from(self.minutes.max(1));
        let mean = (self.mean * n + 0.5) / n;
        let sample_variance = if self.minutes > 1 {
            self.stddev * self.stddev * n / (n - 1.0)
        } else {
            0.0
        };
        let over_dispersed =
            self.minutes > 1 && (n - 1.0) * sample_variance / mean > chi_squared_95(n - 1.0);
        let observed = if over_dispersed {
            sample_variance
        } else {
            mean
        };
        let variance = observed.max(mean * min_dispersion) * (1.0 + 1.0 / n);
        let window = f64::from(window);
        (mean * window, variance * window)
    }
}

/// The 95th percentile of χ² with `k` degrees of freedom (Wilson–Hilferty; within 1% for
/// k >= 5, which `min_baseline_minutes` ensures in practice).
fn chi_squared_95(k: f64) -> f64 {
    const Z_95: f64 = 1.644_853_626_951_472_2;
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + Z_95 * a.sqrt()).powi(3)
}

/// The z-score of `count` against `baseline`, with the original's σ = 0 sentinel.
pub fn z_score(count: u64, baseline: &Baseline) -> f64 {
    if baseline.stddev == 0.0 {
        SIGMA_ZERO_Z
    } else {
        (count as f64 - baseline.mean) / baseline.stddev
    }
}

/// P(X >= count) for X negative binomial with this mean and variance (variance > mean).
pub fn negative_binomial_tail(count: u64, mean: f64, variance: f64) -> f64 {
    use statrs::distribution::{DiscreteCDF, NegativeBinomial};
    if count == 0 {
        return 1.0;
    }
    let variance = variance.max(mean * (1.0 + 1e-9));
    let p = mean / variance;
    let r = mean * mean / (variance - mean);
    match NegativeBinomial::new(r, p) {
        Ok(distribution) => distribution.sf(count - 1).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// The verdict on one bucket (or a window of buckets ending at it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The bucket judged (the last minute of the window).
    pub minute: Minute,
    /// The first minute of the window the evidence covers.
    pub first: Minute,
    /// Errors in the window.
    pub count: u64,
    /// All events in the window.
    pub total: u64,
    pub baseline: Baseline,
    pub z: f64,
    /// Tail probability of evidence this strong under the baseline, where the test has one
    /// and the count is past its guards (below them nothing can fire, so it is not computed).
    pub p_value: Option<f64>,
    /// Strong enough to open an incident.
    pub fires: bool,
    /// Strong enough to keep an open incident alive.
    pub holds: bool,
    pub severity: Severity,
}

impl Assessment {
    /// The error ratio of the window, if it had events.
    pub fn ratio(&self) -> Option<f64> {
        (self.total > 0).then(|| self.count as f64 / self.total as f64)
    }
}

/// Judges the errors of one bucket against a baseline (the classic rule or the count test).
pub fn assess(
    config: &DetectionConfig,
    minute: Minute,
    count: u64,
    total: u64,
    baseline: &Baseline,
) -> Assessment {
    assess_window(config, minute, 1, count, total, baseline)
}

/// Judges the error count of a `window`-minute sum ending at `minute`.
fn assess_window(
    config: &DetectionConfig,
    minute: Minute,
    window: u32,
    count: u64,
    total: u64,
    baseline: &Baseline,
) -> Assessment {
    let guard = count > config.min_count;
    let (z, p_value, fires, holds, critical) = match config.algorithm {
        Algorithm::Classic => {
            let z = z_score(count, baseline);
            (
                z,
                None,
                guard && z > config.z_threshold,
                guard && z > config.stay_z,
                z > config.critical_z,
            )
        }
        Algorithm::NegativeBinomial => {
            let (mean, variance) = baseline.predictive(window, config.min_dispersion);
            let z = (count as f64 - mean) / variance.sqrt();
            let p = negative_binomial_tail(count, mean, variance);
            (
                z,
                Some(p),
                guard && p <= config.p_open,
                guard && p <= config.p_stay,
                p <= config.p_critical,
            )
        }
    };
    Assessment {
        minute,
        first: minute.minus(i64::from(window) - 1),
        count,
        total,
        baseline: *baseline,
        z,
        p_value,
        fires,
        holds,
        severity: if critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
    }
}

/// Judges the error *ratio* of one bucket against the baseline ratio: the errors expected
/// at the baseline ratio for this bucket's traffic, with a quasi-binomial variance (binomial,
/// scaled by the baseline's own over-dispersion, widened for the uncertainty of the
/// baseline ratio), tested with the negative-binomial tail of that mean and variance; plus
/// the count guard and the effect-size guard (`rate_min_factor`). `dispersion` is the
/// baseline's variance ratio (at least 1).
fn assess_rate(
    config: &DetectionConfig,
    minute: Minute,
    errors: u64,
    total: u64,
    baseline: &Baseline,
    dispersion: f64,
) -> Assessment {
    let n = f64::from(baseline.minutes.max(1));
    let base_errors = baseline.mean * n;
    let base_total = baseline.total_mean * n;
    let ratio = (base_errors + 0.5) / (base_total + 1.0);
    let t = total as f64;
    let expected = t * ratio;
    let variance = (dispersion * t * ratio * (1.0 - ratio) * (1.0 + t / (base_total + 1.0)))
        .max(f64::MIN_POSITIVE);
    let z = (errors as f64 - expected) / variance.sqrt();
    // A discrete, right-skewed tail with this mean and variance: at small counts a normal
    // approximation would call ordinary minutes extraordinary.
    let p = if total == 0 {
        1.0
    } else {
        negative_binomial_tail(
            errors,
            expected.max(f64::MIN_POSITIVE),
            variance.max(expected * (1.0 + 1e-9)),
        )
    };
    let observed = if total == 0 { 0.0 } else { errors as f64 / t };
    let material = observed >= config.rate_min_factor * ratio;
    let guard = errors > config.min_count && material;
    Assessment {
        minute,
        first: minute,
        count: errors,
        total,
        baseline: *baseline,
        z,
        p_value: Some(p),
        fires: guard && p <= config.p_open,
        holds: guard && p <= config.p_stay,
        severity: if p <= config.p_critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
    }
}

/// The over-dispersion of the baseline's error ratio: the observed variance of errors
/// around `total × ratio` over the binomial variance (at least 1).
fn rate_dispersion(minutes: &[(u64, u64)]) -> f64 {
    let errors: f64 = minutes.iter().map(|&(e, _)| e as f64).sum();
    let totals: f64 = minutes.iter().map(|&(_, t)| t as f64).sum();
    if totals <= 0.0 {
        return 1.0;
    }
    let ratio = (errors + 0.5) / (totals + 1.0);
    let (observed, binomial) = minutes
        .iter()
        .fold((0.0, 0.0), |(observed, binomial), &(e, t)| {
            let t = t as f64;
            (
                observed + (e as f64 - t * ratio).powi(2),
                binomial + t * ratio * (1.0 - ratio),
            )
        });
    if binomial <= 0.0 {
        1.0
    } else {
        (observed / binomial).max(1.0)
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
    /// Firing spans of earlier incidents, left out of baselines.
    pub excluded: &'a [MinuteSpan],
}

/// The baselines a verdict on a bucket needs: the minutes before it, and for the two-minute
/// window the minutes before that window. Each with the dispersion of its error ratio.
struct Baselines {
    single: (Baseline, f64),
    pair: Option<Baseline>,
}

impl Baselines {
    /// Baselines from the series, or `None` when too little history precedes the bucket.
    fn before(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        excluded: &[MinuteSpan],
    ) -> Option<Baselines> {
        let minutes = Baseline::minutes_before(config, series, bucket, excluded);
        if minutes.len() < config.min_baseline_minutes as usize {
            return None;
        }
        let single = (Baseline::from_minutes(&minutes), rate_dispersion(&minutes));
        let pair = Baseline::for_bucket(config, series, bucket.minus(1), excluded);
        Some(Baselines { single, pair })
    }

    /// The frozen baseline of an active incident. Only single minutes keep an incident
    /// alive: a two-minute window still holding the last firing minute would delay
    /// resolution by a minute without new evidence.
    fn frozen(baseline: Baseline) -> Baselines {
        Baselines {
            // The dispersion is not kept with the incident; assuming none keeps it open
            // rather than closing it early.
            single: (baseline, 1.0),
            pair: None,
        }
    }
}

/// Every verdict on `bucket` for `signal`: the minute alone, and for error counts under the
/// count test also the two minutes ending at it (a rise spread over a minute boundary, or
/// sustained but moderate, shows there first).
fn judge(
    config: &DetectionConfig,
    signal: Signal,
    series: &MinuteSeries,
    bucket: Minute,
    baselines: &Baselines,
) -> Vec<Assessment> {
    let (errors, total) = (series.errors(bucket), series.totals(bucket));
    let (baseline, dispersion) = &baselines.single;
    match (signal, config.algorithm) {
        (Signal::ErrorRate, _) => vec![assess_rate(
            config,
            bucket,
            errors,
            total,
            baseline,
            *dispersion,
        )],
        (Signal::ErrorCount, Algorithm::Classic) => {
            vec![assess(config, bucket, errors, total, baseline)]
        }
        (Signal::ErrorCount, Algorithm::NegativeBinomial) => {
            let mut verdicts = vec![assess_window(config, bucket, 1, errors, total, baseline)];
            if let Some(pair_baseline) = &baselines.pair {
                let previous = bucket.minus(1);
                let pair_errors = errors + series.errors(previous);
                let pair_total = total + series.totals(previous);
                verdicts.push(assess_window(
                    config,
                    bucket,
                    2,
                    pair_errors,
                    pair_total,
                    pair_baseline,
                ));
            }
            verdicts
        }
    }
}

/// Runs one tick of the lifecycle: judges the last complete minute and the current partial
/// minute, so a burst that straddles a minute boundary or a tick is still seen.
pub fn evaluate(config: &DetectionConfig, input: Evaluation<'_>) -> Transition {
    let buckets = [input.now.minus(1), input.now];
    match input.active {
        Some(active) => {
            // Judged against the baseline frozen when it opened.
            let frozen = Baselines::frozen(active.baseline);
            let assessments: Vec<Assessment> = buckets
                .iter()
                .flat_map(|&minute| judge(config, input.signal, input.series, minute, &frozen))
                .collect();
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
                    Baselines::before(config, input.series, minute, input.excluded).map(
                        |baselines| judge(config, input.signal, input.series, minute, &baselines),
                    )
                })
                .flatten()
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
        let config = DetectionConfig::classic();
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
        let verdict = assess(&DetectionConfig::classic(), Minute(0), 6, 6, &flat);
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
        let bad = DetectionConfig {
            p_open: 0.1,
            p_stay: 0.01,
            ..DetectionConfig::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Probabilities));
    }

    /// A series with `errors` and `totals` per minute from minute 0.
    fn series_of(minutes: &[(u64, u64)]) -> MinuteSeries {
        let mut series = MinuteSeries::new(Minute(0), Minute(minutes.len() as i64 - 1));
        for (i, &(errors, total)) in minutes.iter().enumerate() {
            series.add(Minute(i as i64), errors, total);
        }
        series
    }

    fn rate_input(series: &MinuteSeries, now: i64) -> Evaluation<'_> {
        Evaluation {
            signal: Signal::ErrorRate,
            ..input(series, now)
        }
    }

    #[test]
    fn the_count_test_uses_tail_probabilities() {
        let config = DetectionConfig::default();
        // Poisson-like baseline of mean 3: 6 errors is ordinary, 30 is not.
        let baseline = Baseline::from_counts(&[2, 3, 4, 3, 2, 4, 3, 3, 2, 4]);
        let ordinary = assess(&config, Minute(0), 6, 6, &baseline);
        assert!(!ordinary.fires);
        assert!(ordinary.p_value.unwrap() > 0.01);
        let burst = assess(&config, Minute(0), 30, 30, &baseline);
        assert!(burst.fires);
        assert!(burst.p_value.unwrap() < 1e-9);
        assert!(burst.z > 5.0);
    }

    #[test]
    fn a_silent_baseline_has_no_infinite_z() {
        // The classic rule gives z = 999 to anything against an all-zero baseline; the count
        // test needs the count guard and a real tail probability.
        let config = DetectionConfig::default();
        let silent = Baseline::from_counts(&[0; 30]);
        let one = assess(&config, Minute(0), 1, 1, &silent);
        assert!(!one.fires && one.z.is_finite());
        assert!(assess(&config, Minute(0), 6, 6, &silent).fires);
    }

    #[test]
    fn over_dispersed_baselines_need_more_evidence() {
        let config = DetectionConfig::default();
        let steady = Baseline::from_counts(&[10; 30]);
        let bursty: Vec<u64> = (0..30).map(|i| if i % 2 == 0 { 2 } else { 18 }).collect();
        let bursty = Baseline::from_counts(&bursty);
        assert_eq!(steady.mean, bursty.mean);
        let against_steady = assess(&config, Minute(0), 30, 30, &steady);
        let against_bursty = assess(&config, Minute(0), 30, 30, &bursty);
        assert!(against_steady.fires);
        assert!(!against_bursty.fires);
        assert!(against_bursty.p_value.unwrap() > against_steady.p_value.unwrap());
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

    #[test]
    fn classic_evaluates_error_counts_only() {
        assert_eq!(DetectionConfig::classic().signals(), &[Signal::ErrorCount]);
        assert_eq!(
            DetectionConfig::default().signals(),
            &[Signal::ErrorCount, Signal::ErrorRate]
        );
    }

    proptest! {
        #[test]
        fn tail_probabilities_fall_as_counts_rise(mean in 0.2f64..200.0, extra in 1.0f64..5.0, a in 0u64..400, b in 0u64..400) {
            let variance = mean * extra;
            let (low, high) = (a.min(b), a.max(b));
            let p_low = negative_binomial_tail(low, mean, variance);
            let p_high = negative_binomial_tail(high, mean, variance);
            prop_assert!((0.0..=1.0).contains(&p_low));
            prop_assert!(p_high <= p_low + 1e-12);
        }

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
            let config = DetectionConfig::classic();
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
