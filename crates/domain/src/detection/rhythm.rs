//! A service's daily rhythm ([`Rhythm`]): how its errors rise and fall over the day,
//! learned from the same quarter-hours of previous days, so the recent baseline is expected
//! to climb when the day climbs (the morning ramp does not page).

use serde::{Deserialize, Serialize};

use super::series::{Anomalies, MinuteSeries};
use crate::time::Minute;

/// Minutes in one slot of the day.
pub const SLOT_MINUTES: i64 = 15;

/// Slots in a day.
pub const SLOTS: usize = (24 * 60 / SLOT_MINUTES) as usize;

/// How far back a rhythm is learned: two weeks (so the last two weekends are whole days
/// on every day of the week).
pub const RHYTHM_HORIZON_MINUTES: i64 = 14 * 24 * 60;

/// Fewest days with enough history for a rhythm.
pub const MIN_DAYS: usize = 3;

/// Fewest weekend days with enough history for weekends to get their own shape.
pub const MIN_WEEKEND_DAYS: usize = 2;

/// A day counts when this many of its slots are known (about 20 hours).
const MIN_DAY_SLOTS: usize = 80;

/// A slot counts when this many of its minutes are known (and not anomalous).
const MIN_SLOT_MINUTES: u32 = 10;

/// The most a rhythm raises an expectation: a ramp steeper than this within a baseline's
/// reach is an event, not a habit.
pub const MAX_RISE: f64 = 4.0;

/// One quarter-hour of a service's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quarter {
    /// Quarter-hours since the epoch.
    pub index: i64,
    pub errors: u64,
    /// Its known minutes (anomalous ones left out where they are known).
    pub minutes: u32,
}

/// Errors per minute over the day, by quarter-hour (UTC), relative to the day's mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rhythm {
    /// [`SLOTS`] levels with mean 1, shrunk towards 1 by how much of their variation is
    /// noise.
    pub levels: Vec<f64>,
    /// Saturdays' and Sundays' own levels (UTC), when they differ from the other days'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekend: Option<Vec<f64>>,
    /// Days it was learned from.
    pub days: u32,
}

impl Quarter {
    /// Every quarter of `from..=to` with its known minutes, errors from `errors` (quarter
    /// index to errors; quarters it lacks had none): the rows of a store that keeps only
    /// minutes with events, from a service's first known minute `from`.
    pub fn between(
        errors: &std::collections::BTreeMap<i64, u64>,
        from: Minute,
        to: Minute,
    ) -> Vec<Quarter> {
        let (first, last) = (
            from.0.div_euclid(SLOT_MINUTES),
            to.0.div_euclid(SLOT_MINUTES),
        );
        (first..=last)
            .map(|index| {
                let start = (index * SLOT_MINUTES).max(from.0);
                let end = (index * SLOT_MINUTES + SLOT_MINUTES - 1).min(to.0);
                Quarter {
                    index,
                    errors: errors.get(&index).copied().unwrap_or(0),
                    minutes: u32::try_from(end - start + 1).unwrap_or(0),
                }
            })
            .collect()
    }
}

impl Rhythm {
    /// The quarters of `series` from `from` to `to` (known minutes, anomalous ones left out).
    pub fn quarters_of(
        series: &MinuteSeries,
        anomalies: &Anomalies,
        from: Minute,
        to: Minute,
    ) -> Vec<Quarter> {
        let mut quarters: Vec<Quarter> = Vec::new();
        let mut minute = from;
        while minute <= to {
            let index = minute.0.div_euclid(SLOT_MINUTES);
            if series.is_known(minute) && !anomalies.contains(&minute) {
                match quarters.last_mut() {
                    Some(quarter) if quarter.index == index => {
                        quarter.errors += series.errors(minute);
                        quarter.minutes += 1;
                    }
                    _ => quarters.push(Quarter {
                        index,
                        errors: series.errors(minute),
                        minutes: 1,
                    }),
                }
            }
            minute = minute.plus(1);
        }
        quarters
    }

    /// Learns the rhythm from `quarters` (any order, each at most once), `dispersion` the
    /// service's learned over-dispersion of errors (1 for Poisson).
    ///
    /// Each usable day's slots are taken relative to that day's mean (so a service that
    /// grew over the week still has one shape); a slot's level is the median over days (an
    /// incident on one day does not become a habit); then the levels are shrunk towards 1
    /// by the share of their variation that counting noise alone would give. With at least
    /// [`MIN_WEEKEND_DAYS`] weekend days (Saturday and Sunday, UTC) and [`MIN_DAYS`] others,
    /// weekends get their own shape when the two differ by more than that noise would.
    /// `None` with fewer than [`MIN_DAYS`] usable days (a day with at least
    /// [`MIN_DAY_SLOTS`] slots of at least [`MIN_SLOT_MINUTES`] known minutes, and errors),
    /// or when every shape is all noise.
    pub fn learn(quarters: &[Quarter], dispersion: f64) -> Option<Rhythm> {
        let days = relative_days(quarters, dispersion);
        if days.len() < MIN_DAYS {
            return None;
        }
        let of = |weekend: Option<bool>| -> Vec<&[RelativeSlot]> {
            days.iter()
                .filter(|(on_weekend, _)| weekend.is_none_or(|w| w == *on_weekend))
                .map(|(_, slots)| slots.as_slice())
                .collect()
        };
        let (weekdays, weekends) = (of(Some(false)), of(Some(true)));
        let usable = u32::try_from(days.len()).unwrap_or(u32::MAX);
        if weekends.len() >= MIN_WEEKEND_DAYS && weekdays.len() >= MIN_DAYS {
            let (weekday, weekday_noise) = median_shape(&weekdays)?;
            let (weekend, weekend_noise) = median_shape(&weekends)?;
            let difference = weekday
                .iter()
                .zip(&weekend)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                / SLOTS as f64;
            if difference > weekday_noise + weekend_noise {
                let flat = || vec![1.0; SLOTS];
                let levels = shrunk(weekday, weekday_noise);
                let weekend = shrunk(weekend, weekend_noise);
                if levels.is_none() && weekend.is_none() {
                    return None;
                }
                return Some(Rhythm {
                    levels: levels.unwrap_or_else(flat),
                    weekend: Some(weekend.unwrap_or_else(flat)),
                    days: usable,
                });
            }
        }
        let (levels, noise) = median_shape(&of(None))?;
        Some(Rhythm {
            levels: shrunk(levels, noise)?,
            weekend: None,
            days: usable,
        })
    }

    /// The level at `minute`, interpolated between the middles of its slots.
    pub fn level(&self, minute: Minute) -> f64 {
        let levels = match &self.weekend {
            Some(weekend) if is_weekend_day(minute.0.div_euclid(24 * 60)) => weekend,
            _ => &self.levels,
        };
        if levels.len() != SLOTS {
            return 1.0;
        }
        let of_day = minute.0.rem_euclid(24 * 60) as f64 + 0.5;
        let position = of_day / SLOT_MINUTES as f64 - 0.5;
        let below = position.floor();
        let fraction = position - below;
        let slot = |i: f64| levels[(i as i64).rem_euclid(SLOTS as i64) as usize];
        slot(below) * (1.0 - fraction) + slot(below + 1.0) * fraction
    }

    fn mean_level(&self, first: Minute, last: Minute) -> f64 {
        let minutes = last.since(first) + 1;
        (0..minutes).map(|m| self.level(first.plus(m))).sum::<f64>() / minutes as f64
    }

    /// How much higher than over the `baseline_minutes` before `first` the day says errors
    /// run over `first..=last`: at least 1 (a rhythm only ever raises an expectation: a
    /// fall that does not come would otherwise page), at most [`MAX_RISE`].
    pub fn rise(&self, first: Minute, last: Minute, baseline_minutes: u32) -> f64 {
        let before = self.mean_level(
            first.minus(i64::from(baseline_minutes.max(1))),
            first.minus(1),
        );
        if before <= 0.0 {
            return 1.0;
        }
        (self.mean_level(first, last) / before).clamp(1.0, MAX_RISE)
    }
}

/// One slot of one day: (slot, level relative to the day's mean, the noise variance of that
/// level).
type RelativeSlot = (usize, f64, f64);

/// Each usable day (see [`Rhythm::learn`]): whether it is a weekend day, and its slots.
fn relative_days(quarters: &[Quarter], dispersion: f64) -> Vec<(bool, Vec<RelativeSlot>)> {
    let mut days: std::collections::BTreeMap<i64, Vec<&Quarter>> = Default::default();
    for quarter in quarters.iter().filter(|q| q.minutes >= MIN_SLOT_MINUTES) {
        days.entry(quarter.index.div_euclid(SLOTS as i64))
            .or_default()
            .push(quarter);
    }
    days.iter()
        .filter(|(_, slots)| slots.len() >= MIN_DAY_SLOTS)
        .filter_map(|(&day, slots)| {
            let errors: u64 = slots.iter().map(|q| q.errors).sum();
            let minutes: u32 = slots.iter().map(|q| q.minutes).sum();
            if errors == 0 {
                return None;
            }
            let mean = errors as f64 / f64::from(minutes);
            let levels = slots
                .iter()
                .map(|quarter| {
                    let expected = mean * f64::from(quarter.minutes);
                    (
                        quarter.index.rem_euclid(SLOTS as i64) as usize,
                        quarter.errors as f64 / expected,
                        dispersion.max(1.0) / expected,
                    )
                })
                .collect();
            Some((is_weekend_day(day), levels))
        })
        .collect()
}

/// Whether day `day` since the epoch is a Saturday or a Sunday (1970-01-01 was a Thursday).
fn is_weekend_day(day: i64) -> bool {
    matches!((day + 4).rem_euclid(7), 0 | 6)
}

/// The median over `days` of each slot's relative level, normalised to mean 1, and the
/// mean noise variance of a level. `None` when it has no errors at all.
fn median_shape(days: &[&[RelativeSlot]]) -> Option<(Vec<f64>, f64)> {
    let mut slots: Vec<Vec<(f64, f64)>> = vec![Vec::new(); SLOTS];
    for day in days {
        for &(slot, level, noise) in day.iter() {
            slots[slot].push((level, noise));
        }
    }
    let mut levels = Vec::with_capacity(SLOTS);
    let mut noise = 0.0;
    for slot in &mut slots {
        if slot.is_empty() {
            levels.push(1.0);
            continue;
        }
        slot.sort_by(|a, b| a.0.total_cmp(&b.0));
        let k = slot.len();
        let median = if k % 2 == 1 {
            slot[k / 2].0
        } else {
            (slot[k / 2 - 1].0 + slot[k / 2].0) / 2.0
        };
        levels.push(median);
        // A median of k noisy values varies about π/2 times as much as their mean.
        let mean_noise = slot.iter().map(|(_, v)| v).sum::<f64>() / (k * k) as f64;
        noise += std::f64::consts::FRAC_PI_2 * mean_noise;
    }
    let average = levels.iter().sum::<f64>() / SLOTS as f64;
    if average <= 0.0 {
        return None;
    }
    for level in &mut levels {
        *level /= average;
    }
    Some((levels, noise / SLOTS as f64 / (average * average)))
}

/// `levels` shrunk towards 1 by the share of their spread that is signal (James–Stein);
/// `None` when none is.
fn shrunk(mut levels: Vec<f64>, noise: f64) -> Option<Vec<f64>> {
    let spread = levels.iter().map(|l| (l - 1.0).powi(2)).sum::<f64>() / SLOTS as f64;
    let keep = if spread > 0.0 {
        (1.0 - noise / spread).max(0.0)
    } else {
        0.0
    };
    if keep <= 0.0 {
        return None;
    }
    for level in &mut levels {
        *level = 1.0 + keep * (*level - 1.0);
    }
    Some(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `days` days of quarters whose errors follow `shape(slot)` times `scale`.
    fn days_of(days: i64, scale: f64, mut shape: impl FnMut(usize) -> f64) -> Vec<Quarter> {
        (0..days * SLOTS as i64)
            .map(|index| Quarter {
                index,
                errors: (scale * shape(index.rem_euclid(SLOTS as i64) as usize)).round() as u64,
                minutes: 15,
            })
            .collect()
    }

    /// Night at a quarter of the day's level, a ramp over the half hour from 08:00.
    fn office_hours(slot: usize) -> f64 {
        match slot {
            0..32 => 0.25,
            32 => 0.5,
            33 => 0.75,
            34..80 => 1.0,
            _ => 0.25,
        }
    }

    #[test]
    fn a_morning_ramp_is_learned_and_raises_the_expectation() {
        let rhythm = Rhythm::learn(&days_of(4, 300.0, office_hours), 1.0).expect("a rhythm");
        assert_eq!(rhythm.days, 4);
        let morning = Minute(8 * 60 + 30);
        // The 30 minutes before 08:30 ran at about 0.6 of the day, 08:30 itself at about 0.9.
        let rise = rhythm.rise(morning, morning, 30);
        assert!(rise > 1.3 && rise <= MAX_RISE, "{rise}");
        // Midday: flat.
        let noon = Minute(12 * 60);
        assert!((rhythm.rise(noon, noon, 30) - 1.0).abs() < 0.05);
        // Evening fall: never lowers the expectation.
        let evening = Minute(20 * 60 + 10);
        assert_eq!(rhythm.rise(evening, evening, 30), 1.0);
    }

    #[test]
    fn flat_noisy_days_have_no_rhythm_and_few_days_none_either() {
        // Poisson-like noise around a flat level: the shape is noise.
        let mut state = 12345_u64;
        let mut noise = |_: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1.0 + ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.5
        };
        let flat: Vec<Quarter> = days_of(5, 30.0, &mut noise);
        // 30 errors a quarter: relative noise about 18%; the uniform ±25% above is within it.
        assert_eq!(Rhythm::learn(&flat, 1.0), None);
        assert_eq!(Rhythm::learn(&days_of(2, 300.0, office_hours), 1.0), None);
    }

    #[test]
    fn weekends_get_their_own_shape_when_they_differ() {
        // Two weeks from a Monday (day 4 since the epoch): office hours on weekdays,
        // flat weekends.
        let monday = 4 * SLOTS as i64;
        let week = |weekend: fn(usize) -> f64| -> Vec<Quarter> {
            (0..14 * SLOTS as i64)
                .map(|offset| {
                    let index = monday + offset;
                    let slot = index.rem_euclid(SLOTS as i64) as usize;
                    let shape = if is_weekend_day(index.div_euclid(SLOTS as i64)) {
                        weekend(slot)
                    } else {
                        office_hours(slot)
                    };
                    Quarter {
                        index,
                        errors: (300.0 * shape).round() as u64,
                        minutes: 15,
                    }
                })
                .collect()
        };
        let rhythm = Rhythm::learn(&week(|_| 0.25), 1.0).expect("a rhythm");
        assert!(rhythm.weekend.is_some(), "{rhythm:?}");
        let at = |day: i64, minutes: i64| Minute((4 + day) * 24 * 60 + minutes);
        // Monday 08:30 climbs; Saturday 08:30 does not.
        assert!(rhythm.rise(at(7, 510), at(7, 510), 30) > 1.3);
        assert!((rhythm.rise(at(5, 510), at(5, 510), 30) - 1.0).abs() < 0.05);
        // Weekends like weekdays: one shape.
        let same = Rhythm::learn(&week(office_hours), 1.0).expect("a rhythm");
        assert_eq!(same.weekend, None);
        assert!(same.rise(at(5, 510), at(5, 510), 30) > 1.3);
    }

    #[test]
    fn one_day_with_an_incident_is_not_a_habit() {
        let mut quarters = days_of(5, 300.0, |_| 1.0);
        // An afternoon outage on day 2: ten times the errors for an hour.
        for quarter in &mut quarters[2 * SLOTS + 60..2 * SLOTS + 64] {
            quarter.errors *= 10;
        }
        if let Some(rhythm) = Rhythm::learn(&quarters, 1.0) {
            let afternoon = Minute(15 * 60 + 30);
            assert!(rhythm.rise(afternoon, afternoon, 30) < 1.1, "{rhythm:?}");
        }
    }
}
