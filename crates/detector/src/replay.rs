//! `threesigma-detector replay`: detection over a CSV of per-minute counts, without a
//! database. It drives the same per-service evaluation as the live loop
//! (`domain::detection::evaluate_service`), one tick at the end of every minute, and keeps
//! incidents in memory the way the database would.
//!
//! Input rows: `minute,service,errors[,total]`, the minute as RFC 3339 or epoch seconds; a
//! header row is optional; rows may come in any order; minutes without a row count as zero.
//! The data is taken to start at its earliest minute: minutes before it are unknown, not
//! quiet, so the first `min_baseline_minutes` of a file are a warm-up.
//! Output: one JSON line per incident, ordered by opening time:
//! `{"service", "signal", "opened_at", "resolved_at", "peak_z", "severity"}`.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, Utc};
use domain::detection::profile::{PROFILE_EVERY_MINUTES, PROFILE_HORIZON_MINUTES};
use domain::detection::rhythm::RHYTHM_HORIZON_MINUTES;
use domain::detection::{
    self, IncidentSnapshot, MinuteSeries, Profile, Rhythm, ServiceBook, ServiceInput, Transition,
};
use domain::time::parse_timestamp_text;
use domain::{DetectionConfig, Minute, Severity, Signal, Status};
use serde::Serialize;

/// A malformed input.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
    #[error("reading the input: {0}")]
    Read(#[from] csv::Error),
    #[error("the input has no rows")]
    Empty,
}

/// One incident found by a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayIncident {
    pub service: String,
    pub signal: Signal,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub peak_z: f64,
    pub severity: Severity,
}

/// Per-service counts read from the input.
#[derive(Debug, Default)]
pub struct Counts {
    rows: BTreeMap<String, Vec<(Minute, u64, u64)>>,
}

impl Counts {
    /// Keeps only `services` (the sidecar scope: `--service`, `detector.services`).
    pub fn retain_services(&mut self, services: &[String]) {
        self.rows.retain(|service, _| services.contains(service));
    }

    /// Whether no service has a row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Parses the CSV.
    pub fn read(input: impl Read) -> Result<Counts, ReplayError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(input);
        let mut counts = Counts::default();
        for (index, record) in reader.records().enumerate() {
            let record = record?;
            let line = record
                .position()
                .map_or(index as u64 + 1, csv::Position::line);
            let field = |i: usize| record.get(i).unwrap_or("");
            if index == 0 && field(0).eq_ignore_ascii_case("minute") {
                continue;
            }
            let bad = |reason: String| ReplayError::Row { line, reason };
            if record.len() < 3 || record.len() > 4 {
                return Err(bad(format!(
                    "expected minute,service,errors[,total], found {} fields",
                    record.len()
                )));
            }
            let minute = parse_timestamp_text(field(0))
                .map(Minute::containing)
                .map_err(|error| bad(error.to_string()))?;
            let service = field(1).to_owned();
            if service.is_empty() {
                return Err(bad("service is empty".to_owned()));
            }
            let errors: u64 = field(2)
                .parse()
                .map_err(|_| bad(format!("errors {:?} is not a count", field(2))))?;
            let total: u64 = match record.get(3) {
                Some(text) if !text.is_empty() => text
                    .parse()
                    .map_err(|_| bad(format!("total {text:?} is not a count")))?,
                _ => errors,
            };
            counts
                .rows
                .entry(service)
                .or_default()
                .push((minute, errors, total));
        }
        Ok(counts)
    }
}

/// One minute of a service as the replay judged it (`replay --minutes`): why it did or did
/// not fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteVerdict {
    pub service: String,
    pub minute: DateTime<Utc>,
    pub errors: u64,
    pub total: u64,
    /// The baseline mean of errors per minute; `null` in the warm-up (nothing to judge
    /// against yet).
    pub baseline_mean: Option<f64>,
    /// Errors the count test expected in the minute, and the spread it measured `z` in.
    pub expected: Option<f64>,
    pub spread: Option<f64>,
    /// The smallest error count that would have opened an incident in this minute alone.
    pub threshold: Option<u64>,
    pub z: Option<f64>,
    /// The tail probability, past the count guard.
    pub p_value: Option<f64>,
    /// Whether the minute alone fired the count test.
    pub fires: bool,
    /// Whether the minute was judged anomalous by any test (alone, with the minute before,
    /// or the error rate): left out of later baselines.
    pub anomalous: bool,
}

/// Every minute of every service of `counts`, judged as the replay judges it (the same
/// book of judged minutes, baselines and hourly profile as [`replay`]), oldest first per
/// service.
pub fn minutes(
    config: &DetectionConfig,
    counts: &Counts,
) -> Result<Vec<MinuteVerdict>, ReplayError> {
    let (first, last) = span(counts)?;
    let mut verdicts = Vec::new();
    for (service, rows) in &counts.rows {
        let series = series_of(rows, first, last);
        let mut judged = ServiceBook::default();
        let mut profiles = Profiles::new(config);
        let mut traced = BTreeMap::new();
        let mut now = first;
        while now <= last.plus(1) {
            let config = profiles.config_at(&series, first, now);
            let from = now.minus(i64::from(config.lateness_minutes) + 1).max(first);
            judged.refresh_traced(config, &series, from, now, &mut |minute, verdict| {
                let assessment = detection::assess(
                    config,
                    minute,
                    series.errors(minute),
                    series.totals(minute),
                    &verdict.baseline,
                );
                traced.insert(minute, (verdict, assessment));
            });
            profiles.remember(&judged);
            now = now.plus(1);
        }
        let mut minute = first;
        while minute <= last {
            let judged_minute = traced.get(&minute);
            verdicts.push(MinuteVerdict {
                service: service.clone(),
                minute: minute.start(),
                errors: series.errors(minute),
                total: series.totals(minute),
                baseline_mean: judged_minute.map(|(verdict, _)| verdict.baseline.mean),
                expected: judged_minute.map(|(_, assessment)| assessment.expected),
                spread: judged_minute.map(|(_, assessment)| assessment.spread),
                threshold: judged_minute.map(|(verdict, _)| verdict.threshold),
                z: judged_minute.map(|(_, assessment)| assessment.z),
                p_value: judged_minute.and_then(|(_, assessment)| assessment.p_value),
                fires: judged_minute.is_some_and(|(_, assessment)| assessment.fires),
                anomalous: profiles.anomalous.contains(&minute),
            });
            minute = minute.plus(1);
        }
    }
    Ok(verdicts)
}

/// A service's profile and daily rhythm as the replay keeps them: relearned every hour from
/// the day (the rhythm: two weeks) before, as the live detector does, with the minutes judged
/// anomalous left out.
struct Profiles<'a> {
    base: &'a DetectionConfig,
    config: DetectionConfig,
    /// Anomalous minutes of the rhythm's horizon (the book forgets them sooner).
    anomalous: detection::Anomalies,
}

impl<'a> Profiles<'a> {
    fn new(base: &'a DetectionConfig) -> Profiles<'a> {
        Profiles {
            base,
            config: base.clone(),
            anomalous: detection::Anomalies::new(),
        }
    }

    /// The configuration in force at `now`, relearning the profile and the daily rhythm on
    /// the hour.
    fn config_at(&mut self, series: &MinuteSeries, first: Minute, now: Minute) -> &DetectionConfig {
        if now.since(first) % PROFILE_EVERY_MINUTES == 0 {
            self.anomalous = self.anomalous.split_off(&now.minus(RHYTHM_HORIZON_MINUTES));
            let horizon = now.minus(PROFILE_HORIZON_MINUTES);
            let profile = Profile::learn(series, &self.anomalous, horizon, now.minus(1));
            let quarters = Rhythm::quarters_of(
                series,
                &self.anomalous,
                now.minus(RHYTHM_HORIZON_MINUTES),
                now.minus(1),
            );
            let dispersion = profile.map_or(1.0, |profile| profile.dispersion);
            self.config = self
                .base
                .with_profile(profile.as_ref())
                .with_rhythm(Rhythm::learn(&quarters, dispersion));
        }
        &self.config
    }

    /// Keeps the book's anomalous minutes for the profile's horizon.
    fn remember(&mut self, book: &ServiceBook) {
        self.anomalous.extend(book.anomalies().iter().copied());
    }
}

/// The first and last minute of the input.
fn span(counts: &Counts) -> Result<(Minute, Minute), ReplayError> {
    let all = counts.rows.values().flatten();
    let first = all
        .clone()
        .map(|(minute, _, _)| *minute)
        .min()
        .ok_or(ReplayError::Empty)?;
    let last = all
        .map(|(minute, _, _)| *minute)
        .max()
        .ok_or(ReplayError::Empty)?;
    Ok((first, last))
}

/// A service's rows as a series over `first..=end`, known from `first` (the data starts
/// there).
fn series_of(rows: &[(Minute, u64, u64)], first: Minute, end: Minute) -> MinuteSeries {
    let mut series = MinuteSeries::new(first, end).with_history_start(first);
    for (minute, errors, total) in rows {
        series.add(*minute, *errors, *total);
    }
    series
}

/// An incident as the replay remembers it.
struct Tracked {
    snapshot: IncidentSnapshot,
    opened_at: Minute,
}

/// Replays every service of `counts` and returns the incidents found.
pub fn replay(
    config: &DetectionConfig,
    counts: &Counts,
) -> Result<Vec<ReplayIncident>, ReplayError> {
    let (first, last) = span(counts)?;
    // Run on past the data so incidents open at its end can resolve.
    let end = last.plus(i64::from(config.resolve_after) + 1);

    let mut found = Vec::new();
    for (service, rows) in &counts.rows {
        let series = series_of(rows, first, end);
        found.extend(replay_service(config, service, &series, first, end));
    }
    found.sort_by(|a, b| (a.opened_at, &a.service).cmp(&(b.opened_at, &b.service)));
    Ok(found)
}

/// Ticks once at the end of every minute of `first..=end` (each minute's count is complete
/// then) and applies the transitions it decides to an in-memory book.
fn replay_service(
    config: &DetectionConfig,
    service: &str,
    series: &MinuteSeries,
    first: Minute,
    end: Minute,
) -> Vec<ReplayIncident> {
    let mut book: Vec<Tracked> = Vec::new();
    let mut judged = ServiceBook::default();
    let mut profiles = Profiles::new(config);
    let mut now = first;
    while now <= end {
        let config = profiles.config_at(series, first, now).clone();
        let config = &config;
        let from = now.minus(i64::from(config.lateness_minutes) + 1).max(first);
        let refresh = judged.refresh(config, series, from, now);
        profiles.remember(&judged);
        judged.forget_before(now.minus(i64::from(config.baseline_lookback_minutes) + 2));
        let known: Vec<IncidentSnapshot> = book
            .iter()
            .map(|tracked| tracked.snapshot.clone())
            .collect();
        // The tick happens as the minute ends.
        let tick_time = now.plus(1);
        let input = ServiceInput {
            series,
            incidents: &known,
            anomalies: judged.anomalies(),
            late: &refresh.late,
            now,
        };
        for decision in detection::evaluate_service(config, input) {
            match decision.transition {
                Transition::Quiet => {}
                Transition::Open(assessment) => {
                    let id = i64::try_from(book.len()).unwrap_or(i64::MAX);
                    book.push(Tracked {
                        snapshot: IncidentSnapshot {
                            id,
                            signal: decision.signal,
                            status: Status::Open,
                            first_minute: assessment.first,
                            last_fired: assessment.minute,
                            severity: assessment.severity,
                            peak_z: assessment.z,
                            peak_count: assessment.count,
                            opening_count: Some(assessment.count),
                            baseline: assessment.baseline,
                            resolved_at: None,
                        },
                        opened_at: tick_time,
                    });
                }
                Transition::Reopen(assessment) => {
                    if let Some(tracked) = tracked_mut(&mut book, decision.incident_id) {
                        let snapshot = &mut tracked.snapshot;
                        snapshot.status = Status::Open;
                        snapshot.resolved_at = None;
                        snapshot.last_fired = assessment.minute;
                        snapshot.severity = assessment.severity;
                        snapshot.peak_z = snapshot.peak_z.max(assessment.z);
                        snapshot.peak_count = snapshot.peak_count.max(assessment.count);
                    }
                }
                Transition::Update {
                    current,
                    last_fired,
                    escalate_to,
                } => {
                    if let Some(tracked) = tracked_mut(&mut book, decision.incident_id) {
                        let snapshot = &mut tracked.snapshot;
                        snapshot.last_fired = snapshot.last_fired.max(last_fired);
                        snapshot.peak_z = snapshot.peak_z.max(current.z);
                        snapshot.peak_count = snapshot.peak_count.max(current.count);
                        if let Some(severity) = escalate_to {
                            snapshot.severity = snapshot.severity.max(severity);
                        }
                    }
                }
                Transition::Resolve { .. } => {
                    if let Some(tracked) = tracked_mut(&mut book, decision.incident_id) {
                        tracked.snapshot.status = Status::Resolved;
                        tracked.snapshot.resolved_at = Some(tick_time);
                    }
                }
            }
        }
        now = now.plus(1);
    }
    book.into_iter()
        .map(|tracked| ReplayIncident {
            service: service.to_owned(),
            signal: tracked.snapshot.signal,
            opened_at: tracked.opened_at.start(),
            resolved_at: tracked.snapshot.resolved_at.map(Minute::start),
            peak_z: tracked.snapshot.peak_z,
            severity: tracked.snapshot.severity,
        })
        .collect()
}

fn tracked_mut(book: &mut [Tracked], id: Option<i64>) -> Option<&mut Tracked> {
    let id = id?;
    book.iter_mut().find(|tracked| tracked.snapshot.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_with_burst(burst_minute: i64, burst: u64) -> String {
        let mut text = String::from("minute,service,errors,total\n");
        let base = 1_795_600_000 / 60 * 60;
        for i in 0..90 {
            let minute = base + i * 60;
            let quiet = 2 + (i as u64 % 3);
            let errors = if i == burst_minute { burst } else { quiet };
            text.push_str(&format!("{minute},checkout,{errors},{}\n", errors * 20));
            text.push_str(&format!("{minute},search,{quiet},100\n"));
        }
        text
    }

    #[test]
    fn a_burst_opens_one_incident_that_resolves() {
        let counts = Counts::read(csv_with_burst(60, 80).as_bytes()).unwrap();
        let incidents = replay(&DetectionConfig::default(), &counts).unwrap();
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        let incident = &incidents[0];
        assert_eq!(incident.service, "checkout");
        assert_eq!(incident.signal, Signal::ErrorCount);
        assert_eq!(incident.severity, Severity::Critical);
        let base = Minute::containing(DateTime::from_timestamp(1_795_600_000, 0).unwrap());
        // Opened at the end of the burst minute, resolved after five quiet minutes.
        assert_eq!(incident.opened_at, base.plus(61).start());
        assert_eq!(incident.resolved_at, Some(base.plus(67).start()));
    }

    #[test]
    fn minute_verdicts_say_why_a_minute_fired_or_not() {
        let counts = Counts::read(csv_with_burst(60, 80).as_bytes()).unwrap();
        let config = DetectionConfig::default();
        let verdicts = minutes(&config, &counts).unwrap();
        assert_eq!(verdicts.len(), 2 * 90);
        let checkout: Vec<&MinuteVerdict> = verdicts
            .iter()
            .filter(|v| v.service == "checkout")
            .collect();
        // The warm-up has nothing to judge against.
        assert!(
            checkout[..10]
                .iter()
                .all(|v| v.threshold.is_none() && !v.fires)
        );
        for verdict in &checkout[10..] {
            let threshold = verdict.threshold.unwrap();
            // Fires exactly when the count reaches the threshold, and only the burst does.
            assert_eq!(verdict.fires, verdict.errors >= threshold, "{verdict:?}");
            assert_eq!(verdict.fires, verdict.errors == 80, "{verdict:?}");
            assert!(verdict.expected.unwrap() < 5.0 && verdict.z.is_some());
        }
        let burst = checkout[60];
        assert!(burst.anomalous && burst.p_value.unwrap() < config.p_open);
        // The replay's incident opened on the minute the verdicts say fired.
        let incidents = replay(&config, &counts).unwrap();
        assert_eq!(
            incidents[0].opened_at,
            burst.minute + chrono::Duration::minutes(1)
        );
    }

    /// Bursts at minutes 60, 90 and 100: the incident opened at 60 resolves, reopens at 90
    /// and resolves again. Excluding everything from its first to its last firing minute
    /// (quiet minutes between resolve and reopen included) left too few baseline minutes,
    /// so minute 100 was never judged: the control service (bursts at 60 and 100) paged for
    /// it, this one did not.
    #[test]
    fn a_reopened_incident_leaves_its_service_judged() {
        let base = 1_795_600_000 / 60 * 60;
        let mut text = String::from("minute,service,errors,total\n");
        for i in 0..130i64 {
            let quiet = 2 + (i as u64 % 3);
            let burst = |minutes: &[i64]| if minutes.contains(&i) { 80 } else { quiet };
            let minute = base + i * 60;
            let (reopened, control) = (burst(&[60, 90, 100]), burst(&[60, 100]));
            text.push_str(&format!("{minute},reopened,{reopened},{}\n", reopened * 20));
            text.push_str(&format!("{minute},control,{control},{}\n", control * 20));
        }
        let counts = Counts::read(text.as_bytes()).unwrap();
        let incidents = replay(&DetectionConfig::default(), &counts).unwrap();
        let minute = |i: i64| DateTime::from_timestamp(base + i * 60, 0).unwrap();
        let control: Vec<_> = incidents
            .iter()
            .filter(|i| i.service == "control")
            .collect();
        assert_eq!(control.len(), 2, "{incidents:?}");
        assert_eq!(control[1].opened_at, minute(101));
        // One incident, reopened for 90 and again for 100: it resolves five quiet minutes
        // after 100, not after 90.
        let reopened: Vec<_> = incidents
            .iter()
            .filter(|i| i.service == "reopened")
            .collect();
        assert_eq!(reopened.len(), 1, "{incidents:?}");
        assert_eq!(reopened[0].resolved_at, Some(minute(107)));
    }

    /// Errors and traffic step up fourfold and stay there: one incident, which resolves
    /// once the new level is the norm (its minutes' own baselines take it as such after
    /// the look-back), so a burst on top of the new level an hour later is seen.
    #[test]
    fn a_lasting_step_resolves_once_it_is_the_norm_and_later_bursts_are_seen() {
        let base = 1_795_600_000 / 60 * 60;
        let mut text = String::from("minute,service,errors,total\n");
        for i in 0..400i64 {
            let level = if i < 60 { 5 } else { 20 };
            let errors = level + (i as u64 % 3) + if i == 330 { 150 } else { 0 };
            text.push_str(&format!("{},step,{errors},{}\n", base + i * 60, level * 20));
        }
        let counts = Counts::read(text.as_bytes()).unwrap();
        let incidents = replay(&DetectionConfig::default(), &counts).unwrap();
        let minute = |i: i64| DateTime::from_timestamp(base + i * 60, 0).unwrap();
        assert_eq!(incidents.len(), 2, "{incidents:?}");
        let step = &incidents[0];
        assert!(step.opened_at <= minute(62), "{step:?}");
        let resolved = step.resolved_at.expect("the new level became the norm");
        assert!(resolved <= minute(60 + 120 + 30), "{step:?}");
        assert_eq!(incidents[1].opened_at, minute(331), "{incidents:?}");
    }

    #[test]
    fn steady_counts_open_nothing() {
        let counts = Counts::read(csv_with_burst(-1, 0).as_bytes()).unwrap();
        assert!(
            replay(&DetectionConfig::default(), &counts)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rfc3339_minutes_and_missing_totals() {
        let text = "2026-11-25T10:00:00Z,a,1\n2026-11-25T10:01:00Z,a,2,40\n";
        let counts = Counts::read(text.as_bytes()).unwrap();
        assert_eq!(counts.rows["a"].len(), 2);
        assert_eq!(counts.rows["a"][0].2, 1);
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let error =
            Counts::read("minute,service,errors\n60,a,1\n120,a,many\n".as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "line 3: errors \"many\" is not a count");
        let error = Counts::read("yesterday,a,1\n".as_bytes()).unwrap_err();
        assert!(error.to_string().starts_with("line 1:"), "{error}");
    }
}
