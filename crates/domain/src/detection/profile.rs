//! A service's long-run character ([`Profile`]): how clumpy its errors are. Thirty minutes
//! cannot tell clumpy errors from Poisson ones, but the clumpiness of a service is stable
//! while its level moves, so it is learned over hours and used as the floor of the
//! predictive variance.

use super::series::{Anomalies, MinuteSeries};
use crate::time::Minute;

/// How far back a profile is learned: a day.
pub const PROFILE_HORIZON_MINUTES: i64 = 24 * 60;

/// How often it is learned again: hourly.
pub const PROFILE_EVERY_MINUTES: i64 = 60;

/// Minutes in one block of the estimate.
pub const BLOCK_MINUTES: i64 = 60;

/// A learned dispersion below this is taken for Poisson (1): a day of Poisson minutes
/// estimates it within a few percent, and a floor a little above 1 would only blunt the test.
pub const POISSON_BELOW: f64 = 1.15;

/// Fewest usable minutes (known, not anomalous) in a block for it to count.
pub const MIN_BLOCK_MINUTES: usize = 45;

/// Fewest usable blocks (hours) for a profile; with fewer, a service is judged as before
/// (Poisson unless its 30-minute baseline is significantly over-dispersed).
pub const MIN_BLOCKS: usize = 6;

/// What a service's history says about its errors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// Variance over mean of errors per minute around the local level (at least 1): 1 for
    /// Poisson errors, 2 when their variance is twice their mean.
    pub dispersion: f64,
    /// The same for the error ratio: the variance of errors around each minute's events
    /// times the hour's ratio, over the binomial variance (at least 1).
    pub rate_dispersion: f64,
    /// Blocks (hours) it was learned from.
    pub blocks: u32,
}

impl Profile {
    /// Learns the profile from the known minutes `from..=to` of `series`, anomalous ones
    /// left out: for each hour with at least [`MIN_BLOCK_MINUTES`] such minutes and some
    /// errors, the residuals of its error counts around a straight line (so a level that
    /// moves within the hour, as on a daily ramp, is not taken for clumpiness); the profile
    /// is their pooled variance over the mean. `None` with fewer than [`MIN_BLOCKS`] such
    /// hours.
    pub fn learn(
        series: &MinuteSeries,
        anomalies: &Anomalies,
        from: Minute,
        to: Minute,
    ) -> Option<Profile> {
        // Pooled: the residual sums of squares of every usable hour over their degrees of
        // freedom, against the mean of those hours. (A median of per-hour ratios would be
        // robust, but the variance of clumpy counts is right-skewed: its median sits well
        // below the truth. Bursts are kept out as the anomalies they were judged to be.)
        let (mut squares, mut freedom, mut errors, mut minutes, mut blocks) =
            (0.0, 0.0, 0.0, 0.0, 0);
        let (mut rate_observed, mut rate_binomial) = (0.0, 0.0);
        let mut start = from;
        while start.plus(BLOCK_MINUTES - 1) <= to {
            let usable: Vec<(i64, Minute)> = (0..BLOCK_MINUTES)
                .map(|offset| (offset, start.plus(offset)))
                .filter(|(_, minute)| series.is_known(*minute) && !anomalies.contains(minute))
                .collect();
            start = start.plus(BLOCK_MINUTES);
            if usable.len() < MIN_BLOCK_MINUTES {
                continue;
            }
            let block: Vec<(f64, f64)> = usable
                .iter()
                .map(|(offset, minute)| (*offset as f64, series.errors(*minute) as f64))
                .collect();
            let pairs: Vec<(u64, u64)> = usable
                .iter()
                .map(|(_, minute)| (series.errors(*minute), series.totals(*minute)))
                .collect();
            let (observed, binomial) = ratio_squares(&pairs);
            rate_observed += observed;
            rate_binomial += binomial;
            squares += residual_squares(&block);
            freedom += block.len() as f64 - 2.0;
            errors += block.iter().map(|(_, count)| count).sum::<f64>();
            minutes += block.len() as f64;
            blocks += 1;
        }
        if blocks < MIN_BLOCKS || errors <= 0.0 {
            return None;
        }
        let dispersion = squares / freedom / (errors / minutes);
        let rate_dispersion = if rate_binomial > 0.0 {
            rate_observed / rate_binomial
        } else {
            1.0
        };
        // Within noise of Poisson (binomial): that (the 30-minute test still sees more).
        let floor = |value: f64| if value < POISSON_BELOW { 1.0 } else { value };
        Some(Profile {
            dispersion: floor(dispersion),
            rate_dispersion: floor(rate_dispersion),
            blocks: u32::try_from(blocks).unwrap_or(u32::MAX),
        })
    }
}

/// The squared deviations of errors from each minute's events times the block's ratio,
/// and their binomial expectation, over `(errors, total)` minutes.
fn ratio_squares(minutes: &[(u64, u64)]) -> (f64, f64) {
    let errors: f64 = minutes.iter().map(|&(e, _)| e as f64).sum();
    let totals: f64 = minutes.iter().map(|&(_, t)| t as f64).sum();
    if totals <= 0.0 {
        return (0.0, 0.0);
    }
    let ratio = errors / totals;
    minutes
        .iter()
        .fold((0.0, 0.0), |(observed, binomial), &(e, t)| {
            let t = t as f64;
            (
                observed + (e as f64 - t * ratio).powi(2),
                binomial + t * ratio * (1.0 - ratio),
            )
        })
}

/// The sum of squared residuals of the `(offset, count)` points around their least-squares
/// line.
fn residual_squares(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mean = points.iter().map(|(_, count)| count).sum::<f64>() / n;
    let centre = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, count) in points {
        sxy += (x - centre) * (count - mean);
        sxx += (x - centre) * (x - centre);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    points
        .iter()
        .map(|(x, count)| (count - mean - slope * (x - centre)).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::series::fixtures::series_with;

    /// A deterministic generator for the tests (xorshift), with Poisson and gamma draws.
    struct Draws(u64);

    impl Draws {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn poisson(&mut self, lambda: f64) -> u64 {
            // Knuth's method, in chunks so large lambdas do not underflow.
            let mut count = 0;
            let mut left = lambda;
            while left > 0.0 {
                let step = left.min(30.0);
                left -= step;
                let limit = (-step).exp();
                let mut product = self.uniform();
                while product > limit {
                    count += 1;
                    product *= self.uniform();
                }
            }
            count
        }

        /// Gamma(shape, 1) for integer shapes: a sum of exponentials.
        fn gamma(&mut self, shape: u32) -> f64 {
            (0..shape).map(|_| -(1.0 - self.uniform()).ln()).sum()
        }
    }

    #[test]
    fn poisson_errors_have_no_extra_dispersion_and_clumpy_ones_do() {
        let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
        let poisson: Vec<u64> = (0..1440).map(|_| draws.poisson(5.0)).collect();
        let profile = Profile::learn(
            &series_with(&poisson),
            &Anomalies::new(),
            Minute(0),
            Minute(1439),
        )
        .unwrap();
        assert_eq!(profile.blocks, 24);
        assert!(profile.dispersion < 1.25, "{profile:?}");
        // Gamma-Poisson with shape 5: variance 5 + 5 = twice the mean.
        let clumpy: Vec<u64> = (0..1440)
            .map(|_| {
                let rate = draws.gamma(5);
                draws.poisson(rate)
            })
            .collect();
        let profile = Profile::learn(
            &series_with(&clumpy),
            &Anomalies::new(),
            Minute(0),
            Minute(1439),
        )
        .unwrap();
        assert!((1.6..2.5).contains(&profile.dispersion), "{profile:?}");
    }

    #[test]
    fn a_ramp_and_a_burst_are_not_clumpiness_and_short_history_has_no_profile() {
        let mut draws = Draws(0x2545_f491_4f6c_dd1d);
        // The level doubles over every hour; one hour holds a burst of 200.
        let mut counts: Vec<u64> = (0..720)
            .map(|i| draws.poisson(20.0 + 20.0 * ((i % 60) as f64 / 60.0)))
            .collect();
        // Bursts in half the hours: left out as the anomalies they were judged to be.
        let mut anomalies = Anomalies::new();
        for hour in (0..12).step_by(2) {
            let minute = hour * 60 + 20;
            counts[minute as usize] = 200;
            anomalies.insert(Minute(minute));
        }
        let series = series_with(&counts);
        let profile = Profile::learn(&series, &anomalies, Minute(0), Minute(719)).unwrap();
        assert!(profile.dispersion < 1.3, "{profile:?}");
        let short = Profile::learn(&series, &anomalies, Minute(0), Minute(299));
        assert_eq!(short, None);
    }
}
