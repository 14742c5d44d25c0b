//! The verdict on one bucket or window ([`Assessment`]): the classic z rule, the
//! negative-binomial count test over one or more minutes, and the error-ratio test.

use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, negative_binomial_tail, z_score};
use super::config::{Algorithm, DetectionConfig};
use crate::incident::Severity;
use crate::time::Minute;

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
    /// Errors the test expected in the window under the baseline (the predictive mean; the
    /// classic rule: the baseline mean).
    pub expected: f64,
    /// The standard deviation the verdict measured `z` in: the predictive one for the count
    /// and ratio tests (never less than Poisson's), the baseline's population one for the
    /// classic rule. This, not the baseline's own spread, is the "±" to show beside `z`.
    pub spread: f64,
    pub z: f64,
    /// Tail probability of evidence this strong under the baseline, where the test has one
    /// and the count is past its guards (below them nothing can fire, so it is not computed).
    pub p_value: Option<f64>,
    /// Strong enough to open an incident.
    pub fires: bool,
    /// Strong enough to keep an open incident alive.
    pub holds: bool,
    pub severity: Severity,
    /// When it fires: the smallest count that would have fired in the same window against
    /// the same baseline (and, for the ratio test, the same traffic): the threshold of the
    /// rule that fired, in errors.
    pub firing_count: Option<u64>,
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
pub(super) fn assess_window(
    config: &DetectionConfig,
    minute: Minute,
    window: u32,
    count: u64,
    total: u64,
    baseline: &Baseline,
) -> Assessment {
    let guard = |count: u64| count > config.min_count;
    let (expected, spread, z, p_value, fires, holds, critical, firing_count) =
        match config.algorithm {
            Algorithm::Classic => {
                let z = z_score(count, baseline);
                let fires = opens(config, window, baseline)(count);
                let firing_count = fires.then(|| threshold(config, window, baseline));
                (
                    baseline.mean,
                    baseline.stddev,
                    z,
                    None,
                    fires,
                    guard(count) && z > config.stay_z,
                    z > config.critical_z,
                    firing_count,
                )
            }
            Algorithm::NegativeBinomial => {
                let (mean, variance) =
                    baseline.predictive(window, config.count_dispersion(window), config.profiled);
                let z = (count as f64 - mean) / variance.sqrt();
                // Within the count guard nothing can fire: no tail probability is reported.
                let p = guard(count).then(|| negative_binomial_tail(count, mean, variance));
                let below = |threshold: f64| p.is_some_and(|p| p <= threshold);
                let fires = below(config.p_open);
                let firing_count = fires.then(|| threshold(config, window, baseline));
                (
                    mean,
                    variance.sqrt(),
                    z,
                    p,
                    fires,
                    below(config.p_stay),
                    below(config.p_critical),
                    firing_count,
                )
            }
        };
    Assessment {
        minute,
        first: minute.minus(i64::from(window) - 1),
        count,
        total,
        baseline: *baseline,
        expected,
        spread,
        z,
        p_value,
        fires,
        holds,
        severity: if critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
        firing_count,
    }
}

/// Whether an error count in a `window`-minute sum would open an incident against
/// `baseline` (the count signal: the classic rule or the count test). [`assess_window`]
/// decides with it, and [`threshold`] inverts it.
fn opens(config: &DetectionConfig, window: u32, baseline: &Baseline) -> impl Fn(u64) -> bool {
    let predictive = match config.algorithm {
        Algorithm::Classic => None,
        Algorithm::NegativeBinomial => {
            Some(baseline.predictive(window, config.count_dispersion(window), config.profiled))
        }
    };
    move |count| {
        count > config.min_count
            && match predictive {
                None => z_score(count, baseline) > config.z_threshold,
                Some((mean, variance)) => {
                    negative_binomial_tail(count, mean, variance) <= config.p_open
                }
            }
    }
}

/// The smallest error count in a `window`-minute sum that opens an incident against
/// `baseline` (the count signal): the detection threshold in errors, as a chart draws it.
pub fn threshold(config: &DetectionConfig, window: u32, baseline: &Baseline) -> u64 {
    smallest_firing(config.min_count, opens(config, window, baseline))
}

/// The smallest count above `min_count` for which `fires` holds, given that it holds for
/// some count and, once it does, for every larger one (the tests are monotone in the count).
fn smallest_firing(min_count: u64, fires: impl Fn(u64) -> bool) -> u64 {
    let mut low = min_count;
    let mut high = min_count.saturating_add(1).max(1);
    while !fires(high) {
        if high >= u64::MAX / 2 {
            return u64::MAX;
        }
        low = high;
        high *= 2;
    }
    // `fires(low)` is false (below the guard, or found so), `fires(high)` true.
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fires(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    high
}

/// Judges the error *ratio* of one bucket, or of a `window`-minute sum ending at it, against
/// the baseline ratio: the errors expected at the baseline ratio for this traffic, with a quasi-binomial variance (binomial,
/// scaled by the baseline's own over-dispersion, widened for the uncertainty of the
/// baseline ratio), tested with the negative-binomial tail of that mean and variance; plus
/// the count guard and the effect-size guard (`rate_min_factor`). `dispersion` is the
/// baseline's variance ratio (at least 1).
pub(super) fn assess_rate(
    config: &DetectionConfig,
    minute: Minute,
    window: u32,
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
    let guard = |errors: u64| {
        let observed = if total == 0 { 0.0 } else { errors as f64 / t };
        errors > config.min_count && observed >= config.rate_min_factor * ratio
    };
    // A discrete, right-skewed tail with this mean and variance: at small counts a normal
    // approximation would call ordinary minutes extraordinary. Within the guards nothing
    // can fire or hold: not computed (it is the costly part of a verdict).
    let p = guard(errors).then(|| {
        negative_binomial_tail(
            errors,
            expected.max(f64::MIN_POSITIVE),
            variance.max(expected * (1.0 + 1e-9)),
        )
    });
    let below = |threshold: f64| p.is_some_and(|p| p <= threshold);
    let fires = below(config.p_open);
    let firing_count = fires.then(|| {
        smallest_firing(config.min_count, |errors| {
            guard(errors)
                && negative_binomial_tail(
                    errors,
                    expected.max(f64::MIN_POSITIVE),
                    variance.max(expected * (1.0 + 1e-9)),
                ) <= config.p_open
        })
    });
    Assessment {
        minute,
        first: minute.minus(i64::from(window) - 1),
        count: errors,
        total,
        baseline: *baseline,
        expected,
        spread: variance.sqrt(),
        z,
        p_value: p,
        fires,
        holds: below(config.p_stay),
        severity: if below(config.p_critical) {
            Severity::Critical
        } else {
            Severity::Warning
        },
        firing_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::baseline::SIGMA_ZERO_Z;
    use proptest::prelude::*;

    #[test]
    fn a_firing_verdict_names_the_count_that_would_have_fired() {
        let baseline =
            Baseline::from_counts(&[2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3]);
        for config in [DetectionConfig::default(), DetectionConfig::classic()] {
            let burst = assess(&config, Minute(0), 40, 100, &baseline);
            let threshold = burst.firing_count.expect("40 against ~3 fires");
            assert!(
                threshold <= 40 && threshold > config.min_count,
                "{threshold}"
            );
            assert!(assess(&config, Minute(0), threshold, 100, &baseline).fires);
            assert!(!assess(&config, Minute(0), threshold - 1, 100, &baseline).fires);
            assert_eq!(
                assess(&config, Minute(0), 3, 100, &baseline).firing_count,
                None
            );
        }
        // The spread is the test's, not the baseline's: never below Poisson's for counts.
        let flat = Baseline::from_counts(&[3; 30]);
        let verdict = assess(&DetectionConfig::default(), Minute(0), 30, 100, &flat);
        assert_eq!(flat.stddev, 0.0);
        assert!(verdict.spread >= 3.0_f64.sqrt(), "{verdict:?}");
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

    proptest! {
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
    }
}
