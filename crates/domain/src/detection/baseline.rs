//! Baselines and the statistics over them: what a bucket is compared with ([`Baseline`]),
//! its predictive distribution and dispersion, the z-score and the negative-binomial tail.

use serde::{Deserialize, Serialize};

use super::config::DetectionConfig;
use super::series::{Anomalies, MinuteSeries};
use crate::incident::{Named, UnknownName, named_enum};
use crate::time::Minute;

/// The sentinel z-score of the original design when the baseline has no spread.
pub const SIGMA_ZERO_Z: f64 = 999.0;

/// How far a baseline reached for enough usable minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The last `baseline_minutes`, anomalous minutes left out.
    Window,
    /// Further back, within `baseline_lookback_minutes`: anomalous minutes left too few.
    Lookback,
    /// The last `baseline_minutes` anomalous ones included: there were too few others even
    /// within the look-back, so the anomaly is the norm now.
    Unfiltered,
}

named_enum!(Reach, "baseline reach", {
    Window => "window",
    Lookback => "lookback",
    Unfiltered => "unfiltered",
});

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
        let mut sums = Sums::default();
        for &minute in minutes {
            sums.add(minute);
        }
        sums.baseline()
    }

    /// This baseline with its level raised `rise` times (errors and events alike, so the
    /// error ratio stays; the variance in proportion, so the dispersion stays).
    pub fn raised(self, rise: f64) -> Baseline {
        Baseline {
            mean: self.mean * rise,
            stddev: self.stddev * rise.sqrt(),
            total_mean: self.total_mean * rise,
            ..self
        }
    }

    /// The baseline minutes of `bucket`, summed, and how far it reached: the known,
    /// non-anomalous minutes among the `baseline_minutes` before it; when fewer than
    /// `min_baseline_minutes`, the newest `baseline_minutes` such minutes within
    /// `baseline_lookback_minutes`; when still too few, the known minutes among the
    /// `baseline_minutes` before it, anomalous or not (the anomaly has lasted so long that
    /// it is the norm). `None` only when too little history is known at all. (Sums, not
    /// the minutes: a detector cycle summarises several baselines per service, and
    /// keeping them was most of its time.)
    pub(super) fn sums_before(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        anomalies: &Anomalies,
    ) -> Option<(Sums, Reach)> {
        let fewest = config.min_baseline_minutes;
        let sum = |minutes: u32, take: u32, usable: &dyn Fn(Minute) -> bool| {
            let mut sums = Sums::default();
            for back in 1..=i64::from(minutes) {
                if sums.minutes >= take {
                    break;
                }
                let minute = bucket.minus(back);
                if usable(minute) {
                    sums.add((series.errors(minute), series.totals(minute)));
                }
            }
            sums
        };
        let clean = |minute: Minute| series.is_known(minute) && !anomalies.contains(&minute);
        let window = sum(config.baseline_minutes, u32::MAX, &clean);
        if window.minutes >= fewest {
            return Some((window, Reach::Window));
        }
        let reached = sum(
            config.baseline_lookback_minutes,
            config.baseline_minutes,
            &clean,
        );
        if reached.minutes >= fewest {
            return Some((reached, Reach::Lookback));
        }
        let known = sum(config.baseline_minutes, u32::MAX, &|minute| {
            series.is_known(minute)
        });
        (known.minutes >= fewest).then_some((known, Reach::Unfiltered))
    }

    /// The baseline of `bucket` (see [`Baseline::sums_before`]), or `None` when too little
    /// history precedes it.
    pub fn for_bucket(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: Minute,
        anomalies: &Anomalies,
    ) -> Option<Baseline> {
        Baseline::sums_before(config, series, bucket, anomalies).map(|(sums, _)| sums.baseline())
    }

    /// The predictive distribution of the error count of a `window`-minute sum, as
    /// (mean, variance). The mean is smoothed by half an event, so an all-zero baseline still
    /// has a finite expectation. The variance is the mean (Poisson) unless the baseline is
    /// significantly over-dispersed — its index of dispersion (n−1)s²/mean beyond the 95th
    /// percentile of χ²(n−1) — in which case it is the sample variance: a Poisson baseline's
    /// sample variance is noisy, and taking the larger of the two every time would blunt
    /// the test for no reason. Either way it is widened by 1/n for the uncertainty of an
    /// n-minute estimate.
    /// `min_dispersion` (the setting, or a service's learned profile) floors the variance,
    /// and the 30 minutes' own variance takes over only when significantly above that
    /// floor: a one-sided widening, so a service whose errors just became clumpier is
    /// covered before its profile learns it. A floor `learned` from a day of the service's
    /// own minutes is trusted more than 30 minutes: they take over only beyond the 99.9th
    /// percentile (clumpy counts' sample variance is itself heavy-tailed, and at the 95th
    /// it overrode a well-learned floor often enough to blunt the test on every fifth
    /// burst).
    pub fn predictive(&self, window: u32, min_dispersion: f64, learned: bool) -> (f64, f64) {
        let n = f64::from(self.minutes.max(1));
        let mean = (self.mean * n + 0.5) / n;
        let sample_variance = if self.minutes > 1 {
            self.stddev * self.stddev * n / (n - 1.0)
        } else {
            0.0
        };
        // Over-dispersed beyond what is already assumed (`min_dispersion`, or the service's
        // learned profile): only then does the noisy 30-minute variance take over.
        let assumed = mean * min_dispersion.max(1.0);
        let percentile = if learned { Z_999 } else { Z_95 };
        let over_dispersed = self.minutes > 1
            && (n - 1.0) * sample_variance / assumed > chi_squared_quantile(n - 1.0, percentile);
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

/// The standard normal's 95th percentile.
const Z_95: f64 = 1.644_853_626_951_472_2;

/// The standard normal's 99.9th percentile.
const Z_999: f64 = 3.090_232_306_167_813_5;

/// The percentile of χ² with `k` degrees of freedom at the standard normal's `z`
/// (Wilson–Hilferty; within 1% for k >= 5, which `min_baseline_minutes` ensures in
/// practice).
fn chi_squared_quantile(k: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
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

/// Running sums over `(errors, total)` minutes: a baseline and the over-dispersion of its
/// error ratio without keeping the minutes. Squares are taken about the first minute's
/// errors, so a flat run has exactly no spread.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sums {
    pub(super) minutes: u32,
    shift: f64,
    errors: f64,
    shifted: f64,
    shifted_squares: f64,
    totals: f64,
    totals_squared: f64,
    products: f64,
    errors_squared: f64,
}

impl Sums {
    pub(super) fn add(&mut self, (errors, total): (u64, u64)) {
        let (e, t) = (errors as f64, total as f64);
        if self.minutes == 0 {
            self.shift = e;
        }
        self.minutes += 1;
        self.errors += e;
        self.shifted += e - self.shift;
        self.shifted_squares += (e - self.shift).powi(2);
        self.totals += t;
        self.totals_squared += t * t;
        self.products += e * t;
        self.errors_squared += e * e;
    }

    pub(super) fn baseline(&self) -> Baseline {
        if self.minutes == 0 {
            return Baseline {
                minutes: 0,
                mean: 0.0,
                stddev: 0.0,
                total_mean: 0.0,
            };
        }
        let n = f64::from(self.minutes);
        let variance = ((self.shifted_squares - self.shifted * self.shifted / n) / n).max(0.0);
        Baseline {
            minutes: self.minutes,
            mean: self.errors / n,
            stddev: variance.sqrt(),
            total_mean: self.totals / n,
        }
    }

    /// The over-dispersion of the error ratio: the observed variance of errors around
    /// `total × ratio` over the binomial variance (at least 1).
    pub(super) fn rate_dispersion(&self) -> f64 {
        if self.totals <= 0.0 {
            return 1.0;
        }
        let ratio = (self.errors + 0.5) / (self.totals + 1.0);
        let observed =
            self.errors_squared - 2.0 * ratio * self.products + ratio * ratio * self.totals_squared;
        let binomial = ratio * (1.0 - ratio) * self.totals;
        if binomial <= 0.0 {
            1.0
        } else {
            (observed / binomial).max(1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::series::fixtures::series_with;
    use proptest::prelude::*;

    #[test]
    fn population_mean_and_stddev() {
        let baseline = Baseline::from_counts(&[2, 4, 4, 4, 5, 5, 7, 9]);
        assert_eq!(baseline.mean, 5.0);
        assert_eq!(baseline.stddev, 2.0);
        assert_eq!(baseline.minutes, 8);
    }

    #[test]
    fn empty_minutes_are_zero_not_missing() {
        // One error every third minute: the original SQL averaged only non-empty minutes
        // (mean 1, σ 0); zero-filled, the mean is 1/3.
        let counts: Vec<u64> = (0..31).map(|i| u64::from(i % 3 == 0)).collect();
        let series = series_with(&counts);
        let baseline =
            Baseline::for_bucket(&DetectionConfig::default(), &series, Minute(30), &none())
                .unwrap();
        assert_eq!(baseline.minutes, 30);
        assert!((baseline.mean - 10.0 / 30.0).abs() < 1e-12);
    }

    fn none() -> Anomalies {
        Anomalies::new()
    }

    fn reach(
        config: &DetectionConfig,
        series: &MinuteSeries,
        bucket: i64,
        anomalies: &Anomalies,
    ) -> Option<(u32, Reach)> {
        Baseline::sums_before(config, series, Minute(bucket), anomalies)
            .map(|(sums, reach)| (sums.minutes, reach))
    }

    #[test]
    fn unknown_history_and_anomalous_minutes_are_left_out() {
        let config = DetectionConfig::default();
        let series = series_with(&[1; 40]).with_history_start(Minute(25));
        assert_eq!(reach(&config, &series, 30, &none()), None);
        assert_eq!(
            reach(&config, &series, 39, &none()),
            Some((14, Reach::Window))
        );
        let anomalies: Anomalies = (30..=33).map(Minute).collect();
        assert_eq!(
            reach(&config, &series, 39, &anomalies),
            Some((10, Reach::Window))
        );
    }

    #[test]
    fn too_few_usable_minutes_reach_further_back_then_take_the_anomaly_as_the_norm() {
        let config = DetectionConfig::default();
        let series = series_with(&[1; 200]);
        // 25 of the last 30 minutes anomalous: the newest 30 usable ones within 120 minutes.
        let anomalies: Anomalies = (175..200).map(Minute).collect();
        assert_eq!(
            reach(&config, &series, 200, &anomalies),
            Some((30, Reach::Lookback))
        );
        // Everything anomalous for two hours: the last 30 minutes as they are.
        let anomalies: Anomalies = (60..200).map(Minute).collect();
        assert_eq!(
            reach(&config, &series, 200, &anomalies),
            Some((30, Reach::Unfiltered))
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
    }
}
