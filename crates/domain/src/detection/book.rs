//! What a detector has judged of one service's complete minutes ([`ServiceBook`]): the
//! counts each minute had when it was judged and which minutes were anomalous. A minute is
//! judged once, when it completes, and again whenever its counts change (data arrived
//! late); baselines take only judged, non-anomalous minutes.

use std::collections::BTreeMap;

use super::assessment::{Assessment, threshold};
use super::baseline::{Baseline, Reach};
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
        self.refresh_with(config, series, from, now, &mut |_, _| {})
    }

    /// [`ServiceBook::refresh`], telling `judged` each minute judged with the baseline it
    /// was judged against and its threshold (what [`trace`] collects).
    pub fn refresh_traced(
        &mut self,
        config: &DetectionConfig,
        series: &MinuteSeries,
        from: Minute,
        now: Minute,
        judged: &mut dyn FnMut(Minute, TracedVerdict),
    ) -> Refresh {
        self.refresh_with(config, series, from, now, &mut |minute, baselines| {
            let baseline = *baselines.single();
            judged(
                minute,
                TracedVerdict {
                    baseline,
                    reach: baselines.reach,
                    threshold: threshold(config, 1, &baseline),
                },
            );
        })
    }

    /// Whether `minute` was judged anomalous (and is not forgotten yet).
    pub fn is_anomalous(&self, minute: Minute) -> bool {
        self.anomalies.contains(&minute)
    }

    /// [`ServiceBook::refresh`], telling `judged` each minute judged with the baselines it
    /// was judged against.
    fn refresh_with(
        &mut self,
        config: &DetectionConfig,
        series: &MinuteSeries,
        from: Minute,
        now: Minute,
        judged: &mut dyn FnMut(Minute, &Baselines),
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
            judged(judged_minute, &baselines);
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

/// One complete minute of a service as the detector judges it (what a chart draws): its
/// counts and, once the service has history enough, the baseline its errors were judged
/// against and the detection threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TracedMinute {
    pub minute: Minute,
    pub errors: u64,
    pub total: u64,
    /// `None` for a minute with too little history before it (a new service's warm-up) or
    /// before the service's first event.
    pub verdict: Option<TracedVerdict>,
    /// Whether the minute was judged anomalous (left out of later baselines).
    pub anomalous: bool,
}

/// The baseline a minute was judged against and the error count that would have opened an
/// incident in that minute alone (the count signal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TracedVerdict {
    pub baseline: Baseline,
    pub reach: Reach,
    pub threshold: u64,
}

/// Judges every complete minute of `series` up to `last` the way a detector that saw the
/// whole series would ([`ServiceBook::refresh`], anomalous minutes left out of later
/// baselines) and returns the minutes `from..=last`. `series` should reach back
/// `baseline_lookback_minutes` (and the two-minute window) before `from`, or the first
/// minutes' baselines differ from the detector's.
pub fn trace(
    config: &DetectionConfig,
    series: &MinuteSeries,
    from: Minute,
    last: Minute,
) -> Vec<TracedMinute> {
    let mut verdicts = BTreeMap::new();
    let mut book = ServiceBook::default();
    book.refresh_traced(
        config,
        series,
        series.first(),
        last.plus(1),
        &mut |minute, verdict| {
            if minute >= from {
                verdicts.insert(minute, verdict);
            }
        },
    );
    let mut minutes = Vec::new();
    let mut minute = from;
    while minute <= last {
        minutes.push(TracedMinute {
            minute,
            errors: series.errors(minute),
            total: series.totals(minute),
            verdict: verdicts.get(&minute).copied(),
            anomalous: book.anomalies.contains(&minute),
        });
        minute = minute.plus(1);
    }
    minutes
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
    fn a_trace_draws_the_band_the_detector_judged_with() {
        let config = DetectionConfig::default();
        let mut counts = steady(60);
        counts[45] = 60;
        let series = series_with(&counts);
        let traced = trace(&config, &series, Minute(40), Minute(50));
        assert_eq!(traced.len(), 11);
        for point in &traced {
            let verdict = point.verdict.expect("judged: history enough");
            // The burst fires, at the threshold drawn; the steady minutes do not.
            let fires = crate::detection::assess(
                &config,
                point.minute,
                point.errors,
                point.total,
                &verdict.baseline,
            )
            .fires;
            assert_eq!(fires, point.errors >= verdict.threshold, "{point:?}");
            assert_eq!(point.anomalous, point.minute == Minute(45));
            // The burst never enters a baseline: after it the mean stays near 3.
            assert!(verdict.baseline.mean < 3.5, "{point:?}");
        }
        assert!(traced[5].errors >= traced[5].verdict.unwrap().threshold);
        // The warm-up has no verdict.
        assert!(
            trace(&config, &series, Minute(0), Minute(9))
                .iter()
                .all(|point| point.verdict.is_none())
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
