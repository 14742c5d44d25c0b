//! A service's long-run character ([`Profile`]): how clumpy its errors are. Thirty minutes
//! cannot tell clumpy errors from Poisson ones, but the clumpiness of a service is stable
//! while its level moves, so it is learned over hours and used as the floor of the
//! predictive variance.

use serde::{Deserialize, Serialize};

use super::baseline::negative_binomial_tail;
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
    /// The same for sums of a few consecutive minutes, as the windows judge them: above the
    /// single minute's when clumps last longer than a minute (minutes that are each
    /// ordinary can still be ordinary together).
    pub windows: [WindowDispersion; 3],
    /// Blocks (hours) it was learned from.
    pub blocks: u32,
}

/// The dispersion of errors (and of the error ratio) summed over `minutes` consecutive
/// minutes: the variance of the sums around the local level over their mean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowDispersion {
    pub minutes: u32,
    pub dispersion: f64,
    pub rate_dispersion: f64,
}

/// The windows a profile measures (the lengths the tests judge).
pub const WINDOW_MINUTES: [u32; 3] = [2, 3, 5];

impl Profile {
    /// Learns the profile from the known minutes `from..=to` of `series`, anomalous ones
    /// left out: for each hour with at least [`MIN_BLOCK_MINUTES`] such minutes and some
    /// errors, the residuals of its error counts around a straight line (so a level that
    /// moves within the hour, as on a daily ramp, is not taken for clumpiness); the profile
    /// is their pooled variance over the mean, trimmed of the minutes it calls rare. `None`
    /// with fewer than [`MIN_BLOCKS`] such hours.
    pub fn learn(
        series: &MinuteSeries,
        anomalies: &Anomalies,
        from: Minute,
        to: Minute,
    ) -> Option<Profile> {
        // Each usable hour as (offset, errors, total) minutes.
        let mut hours: Vec<Vec<(f64, u64, u64)>> = Vec::new();
        let mut start = from;
        while start.plus(BLOCK_MINUTES - 1) <= to {
            let hour: Vec<(f64, u64, u64)> = (0..BLOCK_MINUTES)
                .map(|offset| (offset, start.plus(offset)))
                .filter(|(_, minute)| series.is_known(*minute) && !anomalies.contains(minute))
                .map(|(offset, minute)| {
                    (offset as f64, series.errors(minute), series.totals(minute))
                })
                .collect();
            start = start.plus(BLOCK_MINUTES);
            if hour.len() >= MIN_BLOCK_MINUTES {
                hours.push(hour);
            }
        }
        let blocks = hours.len();
        if blocks < MIN_BLOCKS {
            return None;
        }
        // Pooled, then trimmed by the model itself: minutes this profile calls rarer than
        // one in a thousand for their hour are left out and the profile estimated again
        // (until it settles). Bursts that were not judged anomalous (too small to fire) would
        // otherwise be learned as clumpiness, raising the threshold that missed them; a
        // median of per-hour ratios would be robust, but the variance of clumpy counts is
        // right-skewed and its median sits well below the truth.
        let mut profile = pooled(&hours, None)?;
        for _ in 0..TRIM_ROUNDS {
            let trimmed = pooled(&hours, Some(profile.dispersion)).unwrap_or(profile);
            let settled =
                (trimmed.dispersion - profile.dispersion).abs() < 0.01 * profile.dispersion;
            profile = trimmed;
            if settled {
                break;
            }
        }
        // Within noise of Poisson (binomial): that.
        let floor = |value: f64| if value < POISSON_BELOW { 1.0 } else { value };
        Some(Profile {
            dispersion: floor(profile.dispersion),
            rate_dispersion: floor(profile.rate_dispersion),
            windows: profile.windows.map(|window| WindowDispersion {
                dispersion: floor(window.dispersion),
                rate_dispersion: floor(window.rate_dispersion),
                ..window
            }),
            blocks: u32::try_from(blocks).unwrap_or(u32::MAX),
        })
    }
}

/// Most rounds of trimming by the model (see [`Profile::learn`]); it stops sooner once the
/// estimate moves by less than 1%.
const TRIM_ROUNDS: usize = 8;

/// Minutes the model calls rarer than this for their hour are trimmed.
const TRIM_TAIL: f64 = 1e-3;

/// The pooled dispersions of `hours` (unfloored); with `trim_at`, minutes whose errors a
/// negative binomial of the hour's mean and that dispersion calls rarer than [`TRIM_TAIL`]
/// are left out. `None` without errors.
fn pooled(hours: &[Vec<(f64, u64, u64)>], trim_at: Option<f64>) -> Option<Profile> {
    let (mut squares, mut freedom, mut errors, mut minutes) = (0.0, 0.0, 0.0, 0.0);
    let (mut rate_observed, mut rate_binomial) = (0.0, 0.0);
    // Per window length: squared residual sums, groups, and the ratio's observed and
    // binomial squares.
    let mut windows = [(0.0, 0.0, 0.0, 0.0); WINDOW_MINUTES.len()];
    for hour in hours {
        let mean = hour.iter().map(|&(_, e, _)| e as f64).sum::<f64>() / hour.len() as f64;
        let kept: Vec<&(f64, u64, u64)> = match trim_at {
            Some(dispersion) if mean > 0.0 => {
                let variance = mean * dispersion.max(1.0);
                let cut = first_rare(mean, variance);
                hour.iter().filter(|&&(_, e, _)| e < cut).collect()
            }
            _ => hour.iter().collect(),
        };
        if kept.len() < 3 {
            continue;
        }
        let points: Vec<(f64, f64)> = kept.iter().map(|&&(x, e, _)| (x, e as f64)).collect();
        let pairs: Vec<(u64, u64)> = kept.iter().map(|&&(_, e, t)| (e, t)).collect();
        let (observed, binomial) = ratio_squares(&pairs);
        rate_observed += observed;
        rate_binomial += binomial;
        let line = fit_line(&points);
        squares += points
            .iter()
            .map(|&(x, count)| (count - line(x)).powi(2))
            .sum::<f64>();
        freedom += points.len() as f64 - 2.0;
        // Consecutive whole windows (offset / w), every minute of them kept.
        let ratio = pairs.iter().map(|&(e, _)| e as f64).sum::<f64>()
            / pairs.iter().map(|&(_, t)| t as f64).sum::<f64>().max(1.0);
        let correction = points.len() as f64 / (points.len() as f64 - 2.0);
        for (slot, &length) in windows.iter_mut().zip(WINDOW_MINUTES.iter()) {
            let mut groups: std::collections::BTreeMap<i64, (u32, f64, f64, f64)> =
                Default::default();
            for &&(x, e, t) in &kept {
                let group = groups.entry(x as i64 / i64::from(length)).or_default();
                let t = t as f64;
                group.0 += 1;
                group.1 += e as f64 - line(x);
                group.2 += e as f64 - t * ratio;
                group.3 += t * ratio * (1.0 - ratio);
            }
            for &(count, residual, rate_residual, binomial) in groups.values() {
                if count == length {
                    slot.0 += residual * residual * correction;
                    slot.1 += 1.0;
                    slot.2 += rate_residual * rate_residual;
                    slot.3 += binomial;
                }
            }
        }
        errors += points.iter().map(|(_, count)| count).sum::<f64>();
        minutes += points.len() as f64;
    }
    if errors <= 0.0 || freedom <= 0.0 {
        return None;
    }
    let per_minute = errors / minutes;
    let ratio_of = |observed: f64, binomial: f64| {
        if binomial > 0.0 {
            observed / binomial
        } else {
            1.0
        }
    };
    let dispersion = squares / freedom / per_minute;
    let rate_dispersion = ratio_of(rate_observed, rate_binomial);
    let mut sums = [WindowDispersion {
        minutes: 1,
        dispersion,
        rate_dispersion,
    }; WINDOW_MINUTES.len()];
    for ((window, &length), &(squares, groups, observed, binomial)) in sums
        .iter_mut()
        .zip(WINDOW_MINUTES.iter())
        .zip(windows.iter())
    {
        window.minutes = length;
        if groups > 0.0 {
            // Never below the single minute's: fewer, noisier terms say less about it.
            window.dispersion =
                (squares / groups / (per_minute * f64::from(length))).max(dispersion);
            window.rate_dispersion = ratio_of(observed, binomial).max(rate_dispersion);
        }
    }
    Some(Profile {
        dispersion,
        rate_dispersion,
        windows: sums,
        blocks: 0,
    })
}

/// The smallest count whose tail under a negative binomial of this mean and variance is
/// at most [`TRIM_TAIL`].
fn first_rare(mean: f64, variance: f64) -> u64 {
    let mut count = mean.ceil() as u64 + 1;
    while negative_binomial_tail(count, mean, variance) > TRIM_TAIL {
        count = count.saturating_mul(2).max(count + 1);
    }
    // Narrow down: the mean's floor is never rare.
    let (mut low, mut high) = (mean.floor() as u64, count);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if negative_binomial_tail(middle, mean, variance) > TRIM_TAIL {
            low = middle;
        } else {
            high = middle;
        }
    }
    high
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

/// The least-squares line through the `(offset, count)` points, as a function of the offset.
fn fit_line(points: &[(f64, f64)]) -> impl Fn(f64) -> f64 + use<> {
    let n = points.len() as f64;
    let mean = points.iter().map(|(_, count)| count).sum::<f64>() / n;
    let centre = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, count) in points {
        sxy += (x - centre) * (count - mean);
        sxx += (x - centre) * (x - centre);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    move |x| mean + slope * (x - centre)
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
    fn clumps_longer_than_a_minute_are_learned_for_the_windows() {
        let mut draws = Draws(0x2545_f491_4f6c_dd1d);
        let learn = |counts: &[u64]| {
            Profile::learn(
                &series_with(counts),
                &Anomalies::new(),
                Minute(0),
                Minute(1439),
            )
            .unwrap()
        };
        // Independent minutes, gamma-Poisson with variance twice the mean: sums of a few
        // minutes are as dispersed as one.
        let independent: Vec<u64> = (0..1440)
            .map(|_| {
                let rate = draws.gamma(5);
                draws.poisson(rate)
            })
            .collect();
        let profile = learn(&independent);
        for window in profile.windows {
            assert!(
                window.dispersion < 1.3 * profile.dispersion,
                "{window:?} of {profile:?}"
            );
        }
        // The same level shared by five minutes at a time: each minute looks twice the
        // mean, five together (variance 25 + 5 × 5 over a mean of 25) six times.
        let mut clumped = Vec::with_capacity(1440);
        while clumped.len() < 1440 {
            let rate = draws.gamma(5);
            clumped.extend((0..5).map(|_| draws.poisson(rate)));
        }
        let profile = learn(&clumped);
        let five = profile.windows[2];
        assert_eq!(five.minutes, 5);
        assert!(
            five.dispersion > 2.0 * profile.dispersion && five.dispersion > 3.5,
            "{profile:?}"
        );
        assert!(
            profile.windows[0].dispersion > profile.dispersion,
            "{profile:?}"
        );
    }

    #[test]
    fn bursts_too_small_to_fire_are_not_learned_as_clumpiness() {
        let mut draws = Draws(0x1234_5678_9abc_def1);
        // Poisson(2), and every two hours three minutes of Poisson(12.4): a day of the
        // bench's bursts, none of them judged anomalous.
        let counts: Vec<u64> = (0..1440)
            .map(|i| draws.poisson(if i % 120 < 3 { 12.4 } else { 2.0 }))
            .collect();
        let profile = Profile::learn(
            &series_with(&counts),
            &Anomalies::new(),
            Minute(0),
            Minute(1439),
        );
        assert_eq!(profile.map(|p| p.dispersion), Some(1.0), "{profile:?}");
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
