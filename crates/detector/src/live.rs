//! The live evaluation: read rollups and incidents from PostgreSQL, run the domain's
//! per-service evaluation (`domain::detection::evaluate_service`) for every active service,
//! write the transitions back. Every write is conditional (see `store::incidents`), so any
//! number of detectors can run this at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::detection::profile::{PROFILE_EVERY_MINUTES, PROFILE_HORIZON_MINUTES};
use domain::detection::rhythm::RHYTHM_HORIZON_MINUTES;
use domain::detection::{
    self, Algorithm, Assessment, Baseline, Decision, IncidentSnapshot, MinuteSeries, MinuteStatus,
    Profile, Quarter, Refresh, Rhythm, ServiceBook, ServiceInput, Transition,
};
use domain::{DetectionConfig, EventKind, Level, Minute, Signal};
use serde::Serialize;
use store::incidents::{self, Actor, Measurement};
use store::leases::BucketLeases;
use store::models::{IncidentRow, MinuteCountRow, NewIncident, OpeningEvidence};
use store::scope::Scope;
use store::{DbPool, StoreResult};
use tokio::sync::Mutex;

use crate::explain::{self, ExplainSettings};
use crate::metrics::DetectorMetrics;
use crate::notify::Notifier;

const ACTOR: &str = "detector";

/// Profiles learned per tick: one in this many services (at the default 10 s interval, 360
/// ticks an hour relearn every profile about once an hour) ...
const PROFILES_PER_TICK_DIVISOR: usize = 300;

/// ... and at least this many, so a detector that starts learns its services' profiles
/// within minutes (until then a service is judged as without one).
const MIN_PROFILES_PER_TICK: usize = 8;

/// What one tick did, for logs, metrics and `threesigma-detector once`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TickReport {
    pub services: usize,
    pub opened: usize,
    pub reopened: usize,
    pub updated: usize,
    pub resolved: usize,
    /// Every decision other than "quiet".
    pub decisions: Vec<DecisionRecord>,
}

/// What a non-quiet decision did to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Opened,
    Reopened,
    Updated,
    Resolved,
}

/// One non-quiet decision.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    pub service: String,
    pub signal: Signal,
    pub action: Action,
    pub incident_id: Option<i64>,
    pub minute: DateTime<Utc>,
    pub count: u64,
    pub z: f64,
    pub baseline_mean: f64,
    pub baseline_stddev: f64,
}

/// Which services this detector evaluates.
#[derive(Clone)]
pub enum Share {
    /// Every service, without coordination (`threesigma-detector once`).
    All,
    /// A fixed list (sidecar mode); no coordination needed.
    Services(Vec<String>),
    /// The services of the hash buckets this replica holds among all replicas.
    Buckets(Arc<Mutex<BucketLeases>>),
}

/// What a detector remembers between ticks: each service's counts over what a baseline can
/// reach, and which of its minutes it judged and found anomalous. Lost on restart (the
/// next tick reads the whole horizon again and judges it afresh, the same way).
#[derive(Default)]
struct Memory {
    /// The scope and minute of the last tick.
    last: Option<(Scope, Minute)>,
    services: HashMap<String, Remembered>,
}

struct Remembered {
    series: MinuteSeries,
    book: ServiceBook,
    /// The detection settings for this service: the configured ones with its learned
    /// profile ([`DetectionConfig::with_profile`]).
    config: DetectionConfig,
    /// When its profile was last learned (`None`: not yet).
    profiled_at: Option<Minute>,
    /// Minutes judged anomalous over the profile's horizon (the book forgets them sooner).
    anomalous: detection::Anomalies,
}

/// The live detector: a pool, the detection settings, its share of the services, what it
/// judged so far, and optionally a webhook notifier.
#[derive(Clone)]
pub struct Detector {
    pool: DbPool,
    config: DetectionConfig,
    share: Share,
    metrics: DetectorMetrics,
    notifier: Option<Notifier>,
    /// How incidents get their explanations (after the tick's transitions commit).
    explain: ExplainSettings,
    /// Notifications of committed transitions, sent at the end of the tick (after its
    /// explanations); a tick that fails before then leaves them to the next one. A std
    /// mutex: it is held only to push or drain.
    unsent: Arc<std::sync::Mutex<Vec<(EventKind, i64)>>>,
    memory: Arc<Mutex<Memory>>,
}

impl Detector {
    pub fn new(
        pool: DbPool,
        config: DetectionConfig,
        share: Share,
        metrics: DetectorMetrics,
        notifier: Option<Notifier>,
    ) -> Detector {
        Detector {
            pool,
            config,
            share,
            metrics,
            notifier,
            explain: ExplainSettings::default(),
            unsent: Arc::default(),
            memory: Arc::default(),
        }
    }

    /// The same detector with these explanation settings.
    pub fn with_explanations(mut self, settings: ExplainSettings) -> Detector {
        self.explain = settings;
        self
    }

    /// The same detector evaluating every service, ignoring the replicas' buckets (safe:
    /// incident writes are idempotent; used for one-off evaluations).
    pub fn unshared(&self) -> Detector {
        let mut detector = self.clone();
        if let Share::Buckets(_) = detector.share {
            detector.share = Share::All;
            detector.memory = Arc::default();
        }
        detector
    }

    /// The services this detector evaluates right now (rebalancing bucket leases).
    pub async fn scope(&self) -> StoreResult<Scope> {
        match &self.share {
            Share::All => Ok(Scope::All),
            Share::Services(services) => Ok(Scope::Services(services.clone())),
            Share::Buckets(leases) => {
                let mut leases = leases.lock().await;
                let held = leases.refresh().await?;
                self.metrics.buckets_held.set(held.len() as i64);
                Ok(Scope::Buckets {
                    buckets: leases.buckets(),
                    held,
                })
            }
        }
    }

    /// Fails when this detector's bucket locks are gone ([`BucketLeases::confirm`]).
    async fn confirm_scope(&self) -> StoreResult<()> {
        match &self.share {
            Share::Buckets(leases) => leases.lock().await.confirm().await,
            Share::All | Share::Services(_) => Ok(()),
        }
    }

    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    pub fn metrics(&self) -> &DetectorMetrics {
        &self.metrics
    }

    /// One evaluation of every active service as of `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> StoreResult<TickReport> {
        let started = std::time::Instant::now();
        let result = self.evaluate(now).await;
        self.metrics
            .cycle_seconds
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(report) => {
                self.metrics.evaluations.inc_by(report.services as u64);
                self.metrics
                    .opened
                    .inc_by((report.opened + report.reopened) as u64);
                self.metrics.resolved.inc_by(report.resolved as u64);
                self.metrics.last_success.set(now.timestamp());
            }
            Err(_) => {
                self.metrics.failed_cycles.inc();
            }
        }
        result
    }

    async fn evaluate(&self, now: DateTime<Utc>) -> StoreResult<TickReport> {
        let config = &self.config;
        let now_minute = Minute::containing(now);
        let lateness = i64::from(config.lateness_minutes);
        // What a baseline can reach (plus the two-minute window and the lateness window).
        let horizon = now_minute.minus(i64::from(config.baseline_lookback_minutes) + lateness + 2);
        let scope = self.scope().await?;
        let mut memory = self.memory.lock().await;
        // Warm: the same scope, ticked within the lateness window. Then only minutes that
        // can still change the verdicts are read again; otherwise the whole horizon is.
        let warm = memory.last.as_ref().is_some_and(|(last_scope, last)| {
            *last_scope == scope && *last <= now_minute && now_minute.since(*last) <= lateness
        });
        let reread = if warm {
            now_minute.minus(lateness + 1)
        } else {
            memory.services.clear();
            horizon
        };

        let mut conn = store::pool::connection(&self.pool).await?;
        let counts = store::counts::minute_counts(
            &mut conn,
            reread.start(),
            now_minute.start(),
            &scope,
            Level::Error.as_i16(),
        )
        .await?;
        let mut incident_rows = incidents::active(&mut conn, &scope).await?;
        let recent = i64::from(config.reopen_window.max(config.lateness_minutes)) + 1;
        incident_rows.extend(
            incidents::resolved_since(&mut conn, now_minute.minus(recent).start(), &scope).await?,
        );

        let mut by_service: BTreeMap<String, Vec<IncidentSnapshot>> = BTreeMap::new();
        for row in &incident_rows {
            by_service
                .entry(row.service.clone())
                .or_default()
                .push(snapshot(row));
        }
        // Roll every remembered series forward, then replace the re-read minutes.
        let memory = &mut *memory;
        for service in memory.services.values_mut() {
            service.series = service.series.reframed(horizon, now_minute);
            service.series.clear(reread, now_minute);
            service.book.forget_before(horizon);
        }
        // Services this detector has not seen yet (new, or back after the horizon) have
        // their whole horizon read; minutes before a service's first event are unknown,
        // not quiet (a new service is not anomalous against the silence before it).
        let mut rows_by_service: BTreeMap<String, Vec<MinuteCountRow>> = BTreeMap::new();
        for row in counts {
            rows_by_service
                .entry(row.service.clone())
                .or_default()
                .push(row);
        }
        let newcomers: HashSet<String> = rows_by_service
            .keys()
            .filter(|service| !memory.services.contains_key(*service))
            .cloned()
            .collect();
        if warm && !newcomers.is_empty() {
            let older = store::counts::minute_counts(
                &mut conn,
                horizon.start(),
                reread.minus(1).start(),
                &Scope::Services(newcomers.iter().cloned().collect()),
                Level::Error.as_i16(),
            )
            .await?;
            for row in older {
                rows_by_service
                    .entry(row.service.clone())
                    .or_default()
                    .push(row);
            }
        }
        let fresh = || Remembered {
            series: MinuteSeries::new(horizon, now_minute),
            book: ServiceBook::default(),
            config: config.clone(),
            profiled_at: None,
            anomalous: detection::Anomalies::new(),
        };
        for (service, rows) in rows_by_service {
            let remembered = memory.services.entry(service).or_insert_with(fresh);
            for row in rows {
                let errors = u64::try_from(row.errors.unwrap_or(0)).unwrap_or(0);
                let total = u64::try_from(row.total.unwrap_or(0)).unwrap_or(0);
                remembered
                    .series
                    .add(Minute::containing(row.minute), errors, total);
            }
        }
        for service in &newcomers {
            if let Some(remembered) = memory.services.get_mut(service)
                && let Some(first) = remembered.series.first_event()
            {
                remembered.series = remembered.series.clone().with_history_start(first);
            }
        }
        // A service that went silent still has its active incident evaluated, so it resolves.
        for (service, snapshots) in &by_service {
            if snapshots.iter().any(|s| s.status.is_active()) {
                memory.services.entry(service.clone()).or_insert_with(fresh);
            }
        }
        // Forget services without events in the horizon and nothing active.
        memory.services.retain(|service, remembered| {
            let active = by_service
                .get(service)
                .is_some_and(|known| known.iter().any(|s| s.status.is_active()));
            active || remembered.series.first_event().is_some()
        });

        let mut report = TickReport {
            services: memory.services.len(),
            ..TickReport::default()
        };
        self.learn_profiles(&mut conn, &mut memory.services, now_minute)
            .await?;
        // About to write: the bucket locks read at the start must still be held.
        self.confirm_scope().await?;
        let mut verdicts = Vec::new();
        for (service, remembered) in &mut memory.services {
            let from = if newcomers.contains(service) {
                horizon
            } else {
                reread
            };
            let config = &remembered.config;
            let refresh = remembered
                .book
                .refresh(config, &remembered.series, from, now_minute);
            remembered
                .anomalous
                .extend(remembered.book.anomalies().iter().copied());
            self.count(&refresh);
            if let Some(status) = refresh.status {
                verdicts.push(service_status(config, service, &status, now));
            }
            let known = by_service.get(service).map_or(&[][..], Vec::as_slice);
            let input = ServiceInput {
                series: &remembered.series,
                incidents: known,
                anomalies: remembered.book.anomalies(),
                late: &refresh.late,
                now: now_minute,
            };
            for decision in detection::evaluate_service(&remembered.config, input) {
                self.apply(&mut conn, service, known, decision, now, &mut report)
                    .await?;
            }
        }
        store::status::record(&mut conn, &verdicts).await?;
        memory.last = Some((scope.clone(), now_minute));
        // Committed: now explain what opened or escalated, then notify with the explanation.
        self.explain_pending(&mut conn, &scope, now).await;
        self.notify(&mut conn).await?;
        Ok(report)
    }

    /// Explains the active incidents of `scope` whose stage has no explanation yet, at most
    /// `explain.per_tick`, newest first. Failures are logged and counted; the stage stays
    /// unexplained and the next tick tries again.
    async fn explain_pending(
        &self,
        conn: &mut store::PooledConnection,
        scope: &Scope,
        now: DateTime<Utc>,
    ) {
        if !self.explain.enabled {
            return;
        }
        let limit = i64::from(self.explain.per_tick);
        let pending = match store::explanations::pending(conn, scope, limit).await {
            Ok(pending) => pending,
            Err(error) => {
                self.metrics.explanations_failed.inc();
                tracing::warn!(%error, "Could not list incidents to explain.");
                return;
            }
        };
        for incident in pending {
            let started = std::time::Instant::now();
            let stored = match explain::explain_incident(conn, &incident, &self.explain, now).await
            {
                Ok(new) => store::explanations::insert(conn, &new).await,
                Err(error) => Err(error),
            };
            match stored {
                Ok(_) => {
                    self.metrics.explanations.inc();
                    self.metrics
                        .explain_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                Err(error) => {
                    self.metrics.explanations_failed.inc();
                    tracing::warn!(%error, incident = incident.id, "Could not explain the incident; will retry.");
                }
            }
        }
    }

    fn unsent(&self) -> std::sync::MutexGuard<'_, Vec<(EventKind, i64)>> {
        self.unsent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues the notifications of committed transitions, each with its incident's newest
    /// explanation; those it cannot read the incident for wait for the next tick.
    async fn notify(&self, conn: &mut store::PooledConnection) -> StoreResult<()> {
        let Some(notifier) = &self.notifier else {
            self.unsent().clear();
            return Ok(());
        };
        let notifications = std::mem::take(&mut *self.unsent());
        for (index, &(event, id)) in notifications.iter().enumerate() {
            let row = match incidents::find(conn, id).await {
                Ok(Some(row)) => row,
                Ok(None) => continue,
                Err(error) => {
                    self.unsent().extend_from_slice(&notifications[index..]);
                    return Err(error);
                }
            };
            let explanation = match store::explanations::latest(conn, id).await {
                Ok(found) => found.and_then(|row| row.explanation().ok()),
                Err(error) => {
                    tracing::warn!(%error, incident = id, "Could not read the explanation; notifying without it.");
                    None
                }
            };
            notifier.notify(event, row, explanation.map(Into::into));
        }
        Ok(())
    }

    /// Learns again the profiles that are due: never learned, or learned more than
    /// [`PROFILE_EVERY_MINUTES`] ago; at most a share of the services per tick (about
    /// every service once an hour at the default interval), so a tick stays O(services).
    /// Reads the due services' last day of rollups and the firing spans of their incidents
    /// (left out with the minutes judged anomalous, so a restart does not learn bursts as
    /// clumpiness).
    async fn learn_profiles(
        &self,
        conn: &mut store::PooledConnection,
        services: &mut HashMap<String, Remembered>,
        now: Minute,
    ) -> StoreResult<()> {
        let budget = services
            .len()
            .div_ceil(PROFILES_PER_TICK_DIVISOR)
            .max(MIN_PROFILES_PER_TICK);
        let mut due: Vec<String> = services
            .iter()
            .filter(|(_, remembered)| {
                remembered
                    .profiled_at
                    .is_none_or(|at| now.since(at) >= PROFILE_EVERY_MINUTES)
            })
            .map(|(service, _)| service.clone())
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        due.sort();
        due.truncate(budget);
        let horizon = now.minus(PROFILE_HORIZON_MINUTES);
        let rows = store::counts::minute_counts(
            conn,
            horizon.start(),
            now.minus(1).start(),
            &Scope::Services(due.clone()),
            Level::Error.as_i16(),
        )
        .await?;
        let spans = incidents::firing_spans(conn, &due, horizon.start()).await?;
        // The daily rhythm: two weeks of quarter-hours (only where the setting wants one).
        let rhythm_from = now.minus(RHYTHM_HORIZON_MINUTES);
        let mut quarters: HashMap<String, (Minute, BTreeMap<i64, u64>)> = HashMap::new();
        if self.config.daily_rhythm {
            for row in store::counts::quarter_counts(
                conn,
                rhythm_from.start(),
                now.minus(1).start(),
                &due,
                Level::Error.as_i16(),
            )
            .await?
            {
                let (first, errors) = quarters
                    .entry(row.service)
                    .or_insert_with(|| (now, BTreeMap::new()));
                *first = (*first).min(Minute::containing(row.first_minute));
                errors.insert(row.quarter, u64::try_from(row.errors).unwrap_or(0));
            }
        }
        let mut history: HashMap<&str, MinuteSeries> = HashMap::new();
        for row in &rows {
            history
                .entry(row.service.as_str())
                .or_insert_with(|| MinuteSeries::new(horizon, now.minus(1)))
                .add(
                    Minute::containing(row.minute),
                    u64::try_from(row.errors.unwrap_or(0)).unwrap_or(0),
                    u64::try_from(row.total.unwrap_or(0)).unwrap_or(0),
                );
        }
        for service in &due {
            let Some(remembered) = services.get_mut(service) else {
                continue;
            };
            remembered.anomalous = remembered.anomalous.split_off(&horizon);
            let mut left_out = remembered.anomalous.clone();
            for (_, first, last) in spans.iter().filter(|(name, _, _)| name == service) {
                let mut minute = Minute::containing(*first);
                while minute <= Minute::containing(*last) {
                    left_out.insert(minute);
                    minute = minute.plus(1);
                }
            }
            let profile = history.remove(service.as_str()).and_then(|series| {
                // Minutes before the service's first event are unknown, not quiet.
                let start = series.first_event()?;
                let series = series.with_history_start(start);
                Profile::learn(&series, &left_out, horizon, now.minus(1))
            });
            // Minutes before the service's first event of the horizon are unknown, not quiet.
            let rhythm = quarters.remove(service).and_then(|(first, errors)| {
                let quarters = Quarter::between(&errors, first, now.minus(1));
                Rhythm::learn(&quarters, profile.map_or(1.0, |p| p.dispersion))
            });
            remembered.config = self
                .config
                .with_profile(profile.as_ref())
                .with_rhythm(rhythm);
            remembered.profiled_at = Some(now);
            if profile.is_some() {
                self.metrics.profiles_learned.inc();
            }
        }
        Ok(())
    }

    /// Counts what a refresh judged.
    fn count(&self, refresh: &Refresh) {
        let metrics = &self.metrics;
        let count = |counter: &prometheus_client::metrics::counter::Counter, n: usize| {
            counter.inc_by(n as u64);
        };
        count(&metrics.minutes_judged, refresh.judged);
        count(&metrics.minutes_unjudged, refresh.unjudged);
        count(&metrics.late_minutes, refresh.changed);
        count(&metrics.baseline_lookbacks, refresh.reached_back);
        count(&metrics.baseline_unfiltered, refresh.unfiltered);
    }

    async fn apply(
        &self,
        conn: &mut store::PooledConnection,
        service: &str,
        known: &[IncidentSnapshot],
        decision: Decision,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> StoreResult<()> {
        let Decision {
            signal,
            transition,
            incident_id,
        } = decision;
        let config = &self.config;
        // The title follows the incident: current evidence, its peak, what it opened with.
        let evolved_title = |current: &Assessment| {
            let known = incident_id.and_then(|id| known.iter().find(|incident| incident.id == id));
            let peak = known.map_or(current.count, |incident| {
                incident.peak_count.max(current.count)
            });
            let opened_with = known
                .and_then(|incident| incident.opening_count)
                .unwrap_or(current.count);
            detection::title(service, signal, current, Some((peak, opened_with)))
        };
        let mut notify = None;
        let (action, assessment, id) = match transition {
            Transition::Quiet => return Ok(()),
            Transition::Open(assessment) => {
                let title = detection::title(service, signal, &assessment, None);
                let late = late_by(&assessment, now);
                let new = new_incident(config, service, signal, &title, &assessment, now, late);
                let mut reason = match assessment.p_value {
                    Some(p) => format!(
                        "tail probability {p:.2e} <= {:.0e} (z = {:.2})",
                        config.p_open, assessment.z
                    ),
                    None => format!("z = {:.2} > {}", assessment.z, config.z_threshold),
                };
                reason.push_str(&late_note(&assessment, late));
                let id = incidents::open(
                    conn,
                    &new,
                    Actor {
                        name: ACTOR,
                        reason: &reason,
                    },
                )
                .await?;
                if let Some(id) = id {
                    report.opened += 1;
                    tracing::info!(service, signal = %signal, z = assessment.z, count = assessment.count, "Incident opened.");
                    notify = Some((EventKind::Opened, id));
                }
                (Action::Opened, assessment, id)
            }
            Transition::Reopen(assessment) => {
                let Some(id) = incident_id else { return Ok(()) };
                let reason = format!(
                    "fired again within the reopen window (z = {:.2}){}",
                    assessment.z,
                    late_note(&assessment, late_by(&assessment, now))
                );
                let reopened = incidents::reopen(
                    conn,
                    id,
                    measurement(&assessment, now),
                    &evolved_title(&assessment),
                    assessment.minute.start(),
                    assessment.severity,
                    Actor {
                        name: ACTOR,
                        reason: &reason,
                    },
                )
                .await?;
                if reopened {
                    report.reopened += 1;
                    tracing::info!(service, signal = %signal, incident = id, "Incident reopened.");
                    notify = Some((EventKind::Reopened, id));
                }
                (Action::Reopened, assessment, Some(id))
            }
            Transition::Update {
                current,
                last_fired,
                escalate_to,
            } => {
                let Some(id) = incident_id else { return Ok(()) };
                let reason = escalate_to.map_or_else(String::new, |severity| {
                    format!("evidence grew to {severity} (z = {:.2})", current.z)
                });
                let escalated = incidents::update(
                    conn,
                    id,
                    measurement(&current, now),
                    &evolved_title(&current),
                    last_fired.start(),
                    escalate_to,
                    Actor {
                        name: ACTOR,
                        reason: &reason,
                    },
                )
                .await?;
                report.updated += 1;
                if escalated {
                    notify = Some((EventKind::Escalated, id));
                }
                (Action::Updated, current, Some(id))
            }
            Transition::Resolve { current } => {
                let Some(id) = incident_id else { return Ok(()) };
                let reason = format!("quiet for {} consecutive minutes", config.resolve_after);
                if incidents::resolve(
                    conn,
                    id,
                    now,
                    Actor {
                        name: ACTOR,
                        reason: &reason,
                    },
                )
                .await?
                {
                    report.resolved += 1;
                    tracing::info!(service, signal = %signal, incident = id, "Incident resolved.");
                    notify = Some((EventKind::Resolved, id));
                }
                (Action::Resolved, current, Some(id))
            }
        };
        report.decisions.push(DecisionRecord {
            service: service.to_owned(),
            signal,
            action,
            incident_id: id,
            minute: assessment.minute.start(),
            count: assessment.count,
            z: assessment.z,
            baseline_mean: assessment.baseline.mean,
            baseline_stddev: assessment.baseline.stddev,
        });
        self.unsent().extend(notify);
        Ok(())
    }
}

/// How many minutes before the last complete one the window of `assessment` ended: above 0
/// when it was judged because its data arrived late.
fn late_by(assessment: &Assessment, now: DateTime<Utc>) -> i64 {
    Minute::containing(now)
        .minus(1)
        .since(assessment.minute)
        .max(0)
}

/// What a timeline says of evidence that arrived late (nothing when it did not).
fn late_note(assessment: &Assessment, late_by: i64) -> String {
    if late_by == 0 {
        return String::new();
    }
    format!(
        "; from data that arrived late: the window ending {} was judged again {late_by} min after it completed",
        assessment.minute.start().format("%H:%M UTC")
    )
}

fn measurement(assessment: &Assessment, now: DateTime<Utc>) -> Measurement {
    Measurement {
        at: now,
        z: assessment.z,
        count: i64::try_from(assessment.count).unwrap_or(i64::MAX),
        total: i64::try_from(assessment.total).unwrap_or(i64::MAX),
        p_value: assessment.p_value,
    }
}

fn new_incident<'a>(
    config: &'a DetectionConfig,
    service: &'a str,
    signal: Signal,
    title: &'a str,
    assessment: &Assessment,
    now: DateTime<Utc>,
    late_by: i64,
) -> NewIncident<'a> {
    let count = i64::try_from(assessment.count).unwrap_or(i64::MAX);
    NewIncident {
        service,
        signal,
        severity: assessment.severity,
        title,
        opened_at: now,
        last_evaluated_at: now,
        first_minute: assessment.first.start(),
        last_fired_minute: assessment.minute.start(),
        current_z: assessment.z,
        peak_z: assessment.z,
        current_count: count,
        current_total: i64::try_from(assessment.total).unwrap_or(i64::MAX),
        peak_count: count,
        p_value: assessment.p_value,
        baseline_mean: assessment.baseline.mean,
        baseline_stddev: assessment.baseline.stddev,
        baseline_minutes: i32::try_from(assessment.baseline.minutes).unwrap_or(i32::MAX),
        baseline_total_mean: assessment.baseline.total_mean,
        algorithm: config.algorithm,
        z_threshold: config.z_threshold,
        min_count: i64::try_from(config.min_count).unwrap_or(i64::MAX),
        opening: Some(OpeningEvidence {
            count,
            z: assessment.z,
            expected: Some(assessment.expected),
            spread: Some(assessment.spread),
            p_threshold: match config.algorithm {
                Algorithm::NegativeBinomial => Some(config.p_open),
                Algorithm::Classic => None,
            },
            firing_count: assessment
                .firing_count
                .map(|count| i64::try_from(count).unwrap_or(i64::MAX)),
            dispersion: config.profiled.then_some(config.min_dispersion),
            rhythm_rise: config
                .rhythm
                .as_ref()
                .map(|rhythm| {
                    rhythm.rise(assessment.first, assessment.minute, config.baseline_minutes)
                })
                .filter(|rise| *rise > 1.0),
            late_by_minutes: (late_by > 0).then_some(late_by),
        }),
    }
}

/// The row `GET /api/v1/services` reads: the verdict on a service's last complete minute.
fn service_status(
    config: &DetectionConfig,
    service: &str,
    status: &MinuteStatus,
    now: DateTime<Utc>,
) -> store::status::ServiceStatus {
    let assessment = &status.assessment;
    store::status::ServiceStatus {
        service: service.to_owned(),
        judged_at: now,
        minute: assessment.minute.start(),
        errors: i64::try_from(assessment.count).unwrap_or(i64::MAX),
        total: i64::try_from(assessment.total).unwrap_or(i64::MAX),
        expected: assessment.expected,
        spread: assessment.spread,
        z: assessment.z,
        p_value: assessment.p_value,
        fires: assessment.fires,
        baseline_mean: assessment.baseline.mean,
        baseline_stddev: assessment.baseline.stddev,
        baseline_minutes: i32::try_from(assessment.baseline.minutes).unwrap_or(i32::MAX),
        baseline_total_mean: assessment.baseline.total_mean,
        baseline_reach: status.reach,
        algorithm: config.algorithm,
        config: serde_json::to_value(config).ok(),
    }
}

/// The service evaluation's view of an incident row.
pub fn snapshot(row: &IncidentRow) -> IncidentSnapshot {
    IncidentSnapshot {
        id: row.id,
        signal: row.signal,
        status: row.status,
        first_minute: Minute::containing(row.first_minute),
        last_fired: Minute::containing(row.last_fired_minute),
        severity: row.severity,
        peak_z: row.peak_z,
        peak_count: u64::try_from(row.peak_count).unwrap_or(0),
        opening_count: row
            .opening
            .as_ref()
            .and_then(|opening| u64::try_from(opening.count).ok()),
        baseline: Baseline {
            minutes: u32::try_from(row.baseline_minutes).unwrap_or(0),
            mean: row.baseline_mean,
            stddev: row.baseline_stddev,
            total_mean: row.baseline_total_mean,
        },
        resolved_at: row.resolved_at.map(Minute::containing),
    }
}
