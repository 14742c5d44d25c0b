//! The input of detection: one service's per-minute counts, zero-filled ([`MinuteSeries`]),
//! and the minutes kept out of baselines ([`Anomalies`]).

use std::collections::BTreeSet;

use crate::time::Minute;

/// Minutes judged anomalous (a verdict on them, alone or with the minute before, fired):
/// they never enter a baseline.
pub type Anomalies = BTreeSet<Minute>;

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

    /// The same counts over `first..=last`: minutes outside the old span are zero, counts
    /// outside the new one are dropped (a live detector's series rolls forward this way).
    pub fn reframed(&self, first: Minute, last: Minute) -> MinuteSeries {
        let mut series = MinuteSeries::new(first, last);
        series.history_start = self.history_start;
        let mut minute = first.max(self.first);
        while minute <= last.min(self.last()) {
            series.add(minute, self.errors(minute), self.totals(minute));
            minute = minute.plus(1);
        }
        series
    }

    /// Sets the minutes `from..=to` to zero (before fresh counts are added to them).
    pub fn clear(&mut self, from: Minute, to: Minute) {
        let mut minute = from;
        while minute <= to {
            if let Some(index) = self.index(minute) {
                self.errors[index] = 0;
                self.totals[index] = 0;
            }
            minute = minute.plus(1);
        }
    }

    /// The first minute with events, if any.
    pub fn first_event(&self) -> Option<Minute> {
        let index = self.totals.iter().position(|&total| total > 0)?;
        Some(self.first.plus(i64::try_from(index).ok()?))
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
    pub(super) fn is_known(&self, minute: Minute) -> bool {
        self.index(minute).is_some() && self.history_start.is_none_or(|start| minute >= start)
    }
}

/// Series built from literal counts, for the tests of detection.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A series with `errors` per minute from minute 0, each minute holding ten times as
    /// many events in all.
    pub(crate) fn series_with(errors: &[u64]) -> MinuteSeries {
        let mut series = MinuteSeries::new(Minute(0), Minute(errors.len() as i64 - 1));
        for (i, &count) in errors.iter().enumerate() {
            series.add(Minute(i as i64), count, count * 10);
        }
        series
    }

    /// A series with `errors` and `totals` per minute from minute 0.
    pub(crate) fn series_of(minutes: &[(u64, u64)]) -> MinuteSeries {
        let mut series = MinuteSeries::new(Minute(0), Minute(minutes.len() as i64 - 1));
        for (i, &(errors, total)) in minutes.iter().enumerate() {
            series.add(Minute(i as i64), errors, total);
        }
        series
    }
}
