//! What a detector has judged of one service's complete minutes ([`ServiceBook`]): the
//! counts each minute had when it was judged and which minutes were anomalous. A minute is
//! judged once, when it completes, and again whenever its counts change (data arrived
//! late); baselines take only judged, non-anomalous minutes.

use std::collections::BTreeMap;

use super::assessment::Assessment;
use super::baseline::Reach;
use super::config::DetectionConfig;
use super::lifecycle::{Baselines, judge};
use super::series::{Anomalies, MinuteSeries};
use crate::incident::Signal;
use crate::time::Minute;

/// One service's judged minutes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceBook {
    /// `(errors, total)` of every judged minute, as judged.
    judged: BTreeMap<Minute, (u64, u64)>,
    anomalies: Anomalies,
}

/// The verdict on a service's last complete minute: its error count against the baseline
/// the detector used (what `/api/v1/services` shows).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinuteStatus {
    pub assessment: Assessment,
    pub reach: Reach,
}

/// What one [`ServiceBook::refresh`] judged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refresh {
    /// Minutes judged (with a baseline).
    pub judged: usize,
    /// Minutes before the last complete one, within the lateness window, whose counts were
    /// new or changed: the lifecycle judges them (again) (see `Evaluation::late`). New ones
    /// are a fresh book's window (a detector that just started catches up on them).
    pub late: Vec<Minute>,
    /// Of those, the ones whose counts changed since they were judged: data that arrived
    /// late.
    pub changed: usize,
    /// Minutes whose counts changed after the lateness window: judged only to keep them out
    /// of baselines if anomalous; they open nothing.
    pub beyond_window: usize,
    /// Minutes at the start of the known history, before `min_baseline_minutes` of it:
    /// nothing to judge them against yet; they form the first baseline.
    pub warm_up: usize,
    /// Minutes left unjudged although the history before them was known: always 0 (a
    /// baseline falls back to look-back, then to the minutes as they are, rather than skip a
    /// minute); counted so that it is seen if it ever is not.
    pub unjudged: usize,
    /// Minutes whose baseline reached back past `baseline_minutes` (anomalous minutes left
    /// too few in it).
    pub reached_back: usize,
    /// Minutes whose baseline took anomalous minutes (there were too few others even within
    /// the look-back).
    pub unfiltered: usize,
    /// The verdict on the last complete minute, when it was judged now.
    pub status: Option<MinuteStatus>,
}

impl ServiceBook {
    /// Minutes judged anomalous: left out of baselines.
    pub fn anomalies(&self) -> &Anomalies {
        &self.anomalies
    }

    /// Judges, oldest first, the complete minutes `from..now` of `series` whose counts are
    /// new or changed since they were last judged. A minute is anomalous when a verdict on
    /// it fires for any signal against its baseline; when only the two-minute window ending
    /// at it fires, both its minutes are, unless the earlier one already was (the window's
    /// evidence is that minute's).
    pub fn refresh(
        &mut self,
        config: &DetectionConfig,
        series: &MinuteSeries,
        from: Minute,
        now: Minute,
    ) -> Refresh {
        let mut refresh = Refresh::default();
        let last_complete = now.minus(1);
        let mut minute = from;
        while minute <= last_complete {
            let judged_minute = minute;
            minute = minute.plus(1);
            if !series.is_known(judged_minute) {
                continue;
            }
            let counts = (series.errors(judged_minute), series.totals(judged_minute));
            let previous = self.judged.insert(judged_minute, counts);
            if previous == Some(counts) {
                continue;
            }
            self.anomalies.remove(&judged_minute);
            let Some(baselines) = Baselines::before(config, series, judged_minute, &self.anomalies)
            else {
                let history = judged_minute.minus(i64::from(config.min_baseline_minutes));
                if series.is_known(history) {
                    refresh.unjudged += 1;
                } else {
                    refresh.warm_up += 1;
                }
                continue;
            };
            refresh.judged += 1;
            match baselines.reach {
                Reach::Window => {}
                Reach::Lookback => refresh.reached_back += 1,
                Reach::Unfiltered => refresh.unfiltered += 1,
            }
            for &signal in config.signals() {
                let verdicts = judge(config, signal, series, judged_minute, &baselines);
                if signal == Signal::ErrorCount && judged_minute == last_complete {
                    refresh.status = verdicts.first().map(|assessment| MinuteStatus {
                        assessment: *assessment,
                        reach: baselines.reach,
                    });
                }
                // A window fires on its own evidence only when no shorter window inside it
                // explains it: the minute alone, or an earlier minute already anomalous.
                let mut explained = false;
                for verdict in verdicts.iter().filter(|verdict| verdict.fires) {
                    let window = verdict.first..=verdict.minute;
                    if explained || self.anomalies.range(window.clone()).next().is_some() {
                        continue;
                    }
                    let mut anomalous = verdict.first;
                    while anomalous <= verdict.minute {
                        self.anomalies.insert(anomalous);
                        anomalous = anomalous.plus(1);
                    }
                    explained = true;
                }
            }
            if judged_minute < last_complete {
                if judged_minute >= now.minus(i64::from(config.lateness_minutes)) {
                    refresh.late.push(judged_minute);
                    refresh.changed += usize::from(previous.is_some());
                } else if previous.is_some() {
                    refresh.beyond_window += 1;
                }
            }
        }
        refresh
    }

    /// Forgets minutes before `minute` (older than any baseline can reach).
    pub fn forget_before(&mut self, minute: Minute) {
        self.judged = self.judged.split_off(&minute);
        self.anomalies = self.anomalies.split_off(&minute);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::series::fixtures::series_with;

    fn steady(minutes: usize) -> Vec<u64> {
        (0..minutes).map(|i| 2 + (i as u64 % 3)).collect()
    }

    #[test]
    fn a_burst_is_anomalous_and_steady_minutes_are_not() {
        let config = DetectionConfig::default();
        let mut counts = steady(60);
        counts[45] = 60;
        let series = series_with(&counts);
        let mut book = ServiceBook::default();
        let refresh = book.refresh(&config, &series, Minute(0), Minute(60));
        assert_eq!(
            book.anomalies().iter().copied().collect::<Vec<_>>(),
            [Minute(45)]
        );
        // The first ten minutes have no baseline yet; every later one is judged.
        assert_eq!((refresh.warm_up, refresh.unjudged), (10, 0));
        assert_eq!(refresh.judged, 50);
        assert!(
            refresh
                .status
                .is_some_and(|status| status.assessment.minute == Minute(59))
        );
    }

    #[test]
    fn counts_that_change_are_judged_again_and_late_ones_within_the_window_reported() {
        let config = DetectionConfig::default();
        let mut counts = steady(60);
        let series = series_with(&counts);
        let mut book = ServiceBook::default();
        book.refresh(&config, &series, Minute(0), Minute(60));
        // Nothing changed: nothing judged again.
        assert_eq!(
            book.refresh(&config, &series, Minute(45), Minute(60)),
            Refresh::default()
        );
        // 60 errors arrive for minute 56 (three minutes late) and for minute 47 (too late).
        counts[56] = 60;
        counts[47] = 60;
        let series = series_with(&counts);
        let refresh = book.refresh(&config, &series, Minute(45), Minute(60));
        assert_eq!(refresh.late, [Minute(56)]);
        assert_eq!((refresh.changed, refresh.beyond_window), (1, 1));
        assert!(book.anomalies().contains(&Minute(47)));
        assert!(book.anomalies().contains(&Minute(56)));
    }
}
