//! The live detector against a real PostgreSQL, driven tick by tick with explicit clocks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::{EventLimits, LogEvent, Minute};
use serde_json::json;
use store::schema::{incident_events, incidents};
use store::testing::TestDatabase;

struct Setup {
    db: TestDatabase,
    app: detector::Application,
    /// The minute the burst happens in; "now" of the ticks is relative to it.
    burst: Minute,
}

fn limits() -> EventLimits {
    EventLimits {
        max_age: Duration::days(3650),
        ..EventLimits::default()
    }
}

/// `errors` errors and `infos` infos of `service`, stamped `at`, received at `received_at`.
fn events(
    service: &str,
    at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    errors: u64,
    infos: u64,
) -> Vec<LogEvent> {
    (0..errors)
        .map(|_| ("error", "boom"))
        .chain((0..infos).map(|_| ("info", "fine")))
        .map(|(level, message)| {
            LogEvent::from_json(
                json!({"service": service, "level": level, "message": message, "ts": at.to_rfc3339()}),
                received_at,
                &limits(),
            )
            .unwrap()
        })
        .collect()
}

async fn write_counts(db: &TestDatabase, service: &str, minute: Minute, errors: u64, infos: u64) {
    let at = minute.start() + Duration::seconds(30);
    // Received as it happens: these tests simulate the clock (ticks in the future of the
    // real one), and an event counts in the minute it arrived.
    write_events(db, &events(service, at, at, errors, infos)).await;
}

async fn write_events(db: &TestDatabase, events: &[LogEvent]) {
    if events.is_empty() {
        return;
    }
    let config = store::pool::connection_config(&db.url, &store::PoolSettings::default()).unwrap();
    let mut client = store::bulk::BulkConnection::connect(&config).await.unwrap();
    client
        .write_new_batch(
            &events.iter().collect::<Vec<_>>(),
            0,
            store::bulk::BulkMethod::Copy,
        )
        .await
        .unwrap();
}

/// 40 minutes of steady traffic for three services, then a burst of `burst` errors on
/// "checkout" in the minute after. (The services' first minutes, after silence, are
/// anomalous and kept out of baselines; the last 30 are not.)
async fn setup(burst: u64) -> Setup {
    let db = TestDatabase::create().await;
    let burst_minute = Minute::containing(Utc::now()).minus(5);
    for back in 1..=40 {
        let minute = burst_minute.minus(back);
        let wobble = (back % 3) as u64;
        write_counts(&db, "checkout", minute, 2 + wobble, 20).await;
        write_counts(&db, "search", minute, 1 + wobble, 50).await;
        write_counts(&db, "billing", minute, wobble, 5).await;
    }
    write_counts(&db, "checkout", burst_minute, burst, 20).await;
    write_counts(&db, "search", burst_minute, 2, 50).await;
    write_counts(&db, "billing", burst_minute, 1, 5).await;
    let app = detector::Application::build(settings(&db)).await.unwrap();
    Setup {
        db,
        app,
        burst: burst_minute,
    }
}

fn settings(db: &TestDatabase) -> detector::Settings {
    let mut settings = detector::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = db.url.clone().into();
    settings.database.pool_size = 2;
    settings
}

fn at(minute: Minute, seconds: i64) -> DateTime<Utc> {
    minute.start() + Duration::seconds(seconds)
}

async fn connect(db: &TestDatabase) -> AsyncPgConnection {
    AsyncPgConnection::establish(&db.url).await.unwrap()
}

/// Resolves incident `id` as an operator would, at `at`.
async fn resolve_as_operator(db: &TestDatabase, id: i64, at: DateTime<Utc>) {
    let operator = store::incidents::Actor {
        name: "alice@example.com",
        reason: "deployed the fix",
    };
    assert!(
        store::incidents::resolve(&mut connect(db).await, id, at, operator)
            .await
            .unwrap()
    );
}

async fn incidents_of(db: &TestDatabase) -> Vec<(i64, String, String)> {
    let mut conn = connect(db).await;
    incidents::table
        .select((incidents::id, incidents::service, incidents::status))
        .order(incidents::id)
        .load(&mut conn)
        .await
        .unwrap()
}

async fn timeline(db: &TestDatabase, id: i64) -> Vec<String> {
    let mut conn = connect(db).await;
    incident_events::table
        .filter(incident_events::incident_id.eq(id))
        .order(incident_events::id)
        .select(incident_events::kind)
        .load(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_burst_opens_one_incident_for_its_service_only() {
    let setup = setup(60).await;
    let report = setup
        .app
        .detector()
        .tick(at(setup.burst, 40))
        .await
        .unwrap();
    assert_eq!(report.services, 3);
    assert_eq!(report.opened, 1);
    let found = incidents_of(&setup.db).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].1.as_str(), found[0].2.as_str()),
        ("checkout", "open")
    );

    let mut conn = connect(&setup.db).await;
    let row = store::incidents::find(&mut conn, found[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.current_count, 60);
    assert_eq!(row.baseline_minutes, 30);
    assert!(
        (row.baseline_mean - 3.0).abs() < 1e-9,
        "{}",
        row.baseline_mean
    );
    assert_eq!(row.severity, domain::Severity::Critical);
    assert_eq!(
        row.algorithm,
        domain::detection::Algorithm::NegativeBinomial
    );
    assert!(row.p_value.is_some_and(|p| p < 1e-12), "{:?}", row.p_value);
    assert_eq!(row.current_total, 80);
    assert!(
        (row.baseline_total_mean - 23.0).abs() < 1e-9,
        "{}",
        row.baseline_total_mean
    );
    assert_eq!(row.first_minute, setup.burst.start());
    // The evidence of the rule that fired: its p threshold, the count that would have fired,
    // and the spread the test used (the baseline's own is under 1; the test's never below
    // Poisson's √3).
    let opening = row.opening.expect("opening evidence");
    assert_eq!((opening.count, opening.p_threshold), (60, Some(1e-5)));
    let firing = opening.firing_count.expect("a firing count");
    assert!((6..60).contains(&firing), "{firing}");
    assert!(
        opening.spread.is_some_and(|sd| sd >= 3.0_f64.sqrt()),
        "{opening:?}"
    );
    assert!(
        row.title.contains("60 errors/min (expected 3.0 ± "),
        "{}",
        row.title
    );
}

#[tokio::test]
async fn repeated_and_concurrent_ticks_never_duplicate() {
    let setup = setup(60).await;
    let other = detector::Application::build(settings(&setup.db))
        .await
        .unwrap();
    let now = at(setup.burst, 40);
    let (a, b) = tokio::join!(setup.app.detector().tick(now), other.detector().tick(now));
    assert_eq!(a.unwrap().opened + b.unwrap().opened, 1);
    setup
        .app
        .detector()
        .tick(now + Duration::seconds(10))
        .await
        .unwrap();
    let found = incidents_of(&setup.db).await;
    assert_eq!(found.len(), 1);
    assert_eq!(timeline(&setup.db, found[0].0).await, ["opened"]);
}

#[tokio::test]
async fn quiet_minutes_resolve_and_a_new_burst_reopens() {
    let setup = setup(60).await;
    let detector = setup.app.detector();
    detector.tick(at(setup.burst, 40)).await.unwrap();
    // Four quiet complete minutes after the burst: still open.
    let report = detector.tick(at(setup.burst.plus(5), 5)).await.unwrap();
    assert_eq!(report.resolved, 0);
    assert_eq!(incidents_of(&setup.db).await[0].2, "open");
    // Five: resolved.
    let report = detector.tick(at(setup.burst.plus(6), 5)).await.unwrap();
    assert_eq!(report.resolved, 1);
    let found = incidents_of(&setup.db).await;
    assert_eq!(found[0].2, "resolved");

    // The errors come back within the reopen window: the same incident reopens.
    let again = setup.burst.plus(8);
    write_counts(&setup.db, "checkout", again, 70, 20).await;
    let report = detector.tick(at(again, 30)).await.unwrap();
    assert_eq!(report.reopened, 1, "{report:?}");
    let found = incidents_of(&setup.db).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].2, "open");
    assert_eq!(
        timeline(&setup.db, found[0].0).await,
        ["opened", "resolved", "reopened"]
    );
}

/// An operator resolves the incident while its burst is still the last complete minute:
/// the next ticks must not reopen it from that same minute (they did: "reopened, z = 129,
/// count 17", no new errors). New errors afterwards still reopen it.
#[tokio::test]
async fn a_manual_resolve_is_not_undone_by_the_burst_it_resolved() {
    let setup = setup(60).await;
    let detector = setup.app.detector();
    detector.tick(at(setup.burst, 40)).await.unwrap();
    let id = incidents_of(&setup.db).await[0].0;
    let next = setup.burst.plus(1);
    resolve_as_operator(&setup.db, id, at(next, 5)).await;
    for seconds in [10, 30, 50] {
        let report = detector.tick(at(next, seconds)).await.unwrap();
        assert_eq!((report.opened, report.reopened), (0, 0), "{report:?}");
    }
    assert_eq!(timeline(&setup.db, id).await, ["opened", "resolved"]);
    assert_eq!(incidents_of(&setup.db).await[0].2, "resolved");

    // The errors come back: that is new evidence, and the same incident reopens.
    let again = setup.burst.plus(2);
    write_counts(&setup.db, "checkout", again, 70, 20).await;
    let report = detector.tick(at(again, 30)).await.unwrap();
    assert_eq!(report.reopened, 1, "{report:?}");
    assert_eq!(
        timeline(&setup.db, id).await,
        ["opened", "resolved", "reopened"]
    );
}

/// A shipper whose clock runs two minutes ahead sends a burst: it is judged at once, not
/// when its minute comes (it was ~70 s late for +2 min).
#[tokio::test]
async fn future_stamped_errors_are_judged_when_they_arrive() {
    let db = TestDatabase::create().await;
    let now = Utc::now();
    let current = Minute::containing(now);
    for back in 1..=30 {
        write_counts(
            &db,
            "checkout",
            current.minus(back),
            2 + (back % 3) as u64,
            20,
        )
        .await;
    }
    let ahead = now + Duration::minutes(2);
    write_events(&db, &events("checkout", ahead, now, 60, 0)).await;
    let app = detector::Application::build(settings(&db)).await.unwrap();
    let report = app.detector().tick(now).await.unwrap();
    assert_eq!(report.opened, 1, "{report:?}");
    let row = store::incidents::find(&mut connect(&db).await, incidents_of(&db).await[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.first_minute, current.start());
    assert_eq!(row.current_count, 60);
}

#[tokio::test]
async fn acknowledged_incidents_stay_acknowledged_while_updated() {
    let setup = setup(60).await;
    let detector = setup.app.detector();
    detector.tick(at(setup.burst, 40)).await.unwrap();
    let id = incidents_of(&setup.db).await[0].0;
    let mut conn = connect(&setup.db).await;
    let operator = store::incidents::Actor {
        name: "alice@example.com",
        reason: "",
    };
    assert!(
        store::incidents::acknowledge(&mut conn, id, Utc::now(), operator)
            .await
            .unwrap()
    );
    write_counts(&setup.db, "checkout", setup.burst.plus(1), 90, 20).await;
    detector.tick(at(setup.burst.plus(1), 40)).await.unwrap();
    let row = store::incidents::find(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, domain::Status::Acknowledged);
    assert_eq!(row.peak_count, 90);
    // The title follows the incident: now 90 errors, opened at 60.
    assert!(
        row.title.starts_with("checkout: 90 errors/min"),
        "{}",
        row.title
    );
    assert!(row.title.contains("peak 90, opened at 60"), "{}", row.title);
    assert_eq!(row.last_fired_minute, setup.burst.plus(1).start());
}

#[tokio::test]
async fn a_sidecar_sees_only_its_service() {
    let setup = setup(60).await;
    let mut scoped = settings(&setup.db);
    scoped.detector.services = vec!["search".to_owned()];
    let sidecar = detector::Application::build(scoped).await.unwrap();
    let report = sidecar.detector().tick(at(setup.burst, 40)).await.unwrap();
    assert_eq!((report.services, report.opened), (1, 0));
    assert!(incidents_of(&setup.db).await.is_empty());
}

#[tokio::test]
async fn three_replicas_share_the_services_and_open_one_incident() {
    let setup = setup(60).await;
    let replicas = [
        &setup.app,
        &detector::Application::build(settings(&setup.db))
            .await
            .unwrap(),
        &detector::Application::build(settings(&setup.db))
            .await
            .unwrap(),
    ];
    let now = at(setup.burst, 40);
    // Whatever each replica holds while they rebalance, together they open one incident.
    for round in 0..3 {
        let ticks = futures_util_join(
            replicas.map(|replica| replica.detector().tick(now + Duration::seconds(round))),
        );
        let opened: usize = ticks
            .await
            .into_iter()
            .map(|report| report.unwrap().opened)
            .sum();
        assert!(opened <= 1);
    }
    let found = incidents_of(&setup.db).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "checkout");
    assert_eq!(timeline(&setup.db, found[0].0).await, ["opened"]);

    // After rebalancing, the 64 buckets are split between the three, each held once.
    let mut held = Vec::new();
    for replica in replicas {
        match replica.detector().scope().await.unwrap() {
            store::scope::Scope::Buckets {
                buckets,
                held: mine,
            } => {
                assert_eq!(buckets, 64);
                assert!((20..=22).contains(&mine.len()), "{mine:?}");
                held.extend(mine);
            }
            other => panic!("replicas share buckets, got {other:?}"),
        }
    }
    held.sort_unstable();
    assert_eq!(held, (0..64).collect::<Vec<i32>>());
}

async fn futures_util_join<F: std::future::Future>(futures: [F; 3]) -> Vec<F::Output> {
    let [a, b, c] = futures;
    let (a, b, c) = tokio::join!(a, b, c);
    vec![a, b, c]
}

#[tokio::test]
async fn webhooks_announce_transitions_and_are_retried() {
    use std::sync::Mutex as StdMutex;

    use actix_web::{App, HttpResponse, HttpServer, web};

    // A receiver that refuses its first delivery with a 500, then accepts.
    let received: std::sync::Arc<StdMutex<Vec<serde_json::Value>>> = Default::default();
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sink, tries) = (received.clone(), attempts.clone());
    let server = HttpServer::new(move || {
        let (sink, tries) = (sink.clone(), tries.clone());
        App::new().route(
            "/hook",
            web::post().to(
                move |body: web::Json<serde_json::Value>, request: actix_web::HttpRequest| {
                    let (sink, tries) = (sink.clone(), tries.clone());
                    async move {
                        if tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                            return HttpResponse::InternalServerError().finish();
                        }
                        assert_eq!(
                            request.headers().get("authorization").unwrap(),
                            "Bearer hook-secret"
                        );
                        sink.lock().unwrap().push(body.into_inner());
                        HttpResponse::NoContent().finish()
                    }
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let setup = setup(60).await;
    let mut hooked = settings(&setup.db);
    hooked.webhook.url = format!("http://127.0.0.1:{port}/hook").into();
    hooked.webhook.authorization = "Bearer hook-secret".into();
    hooked.webhook.link_base = "http://query.example:8081".to_owned();
    hooked.webhook.retry_min = std::time::Duration::from_millis(50);
    let app = detector::Application::build(hooked).await.unwrap();
    app.detector().tick(at(setup.burst, 40)).await.unwrap();
    app.detector()
        .tick(at(setup.burst.plus(6), 5))
        .await
        .unwrap();

    for _ in 0..200 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let opened = bodies
        .iter()
        .find(|b| b["event"] == "opened")
        .expect("an opened notification");
    let resolved = bodies
        .iter()
        .find(|b| b["event"] == "resolved")
        .expect("a resolved notification");
    let id = opened["incident"]["id"].as_i64().unwrap();
    assert_eq!(opened["incident"]["service"], "checkout");
    assert_eq!(opened["incident"]["status"], "open");
    assert_eq!(
        opened["link"],
        format!("http://query.example:8081/api/v1/incidents/{id}")
    );
    assert_eq!(resolved["incident"]["status"], "resolved");
    let attempts =
        std::sync::atomic::AtomicUsize::load(&attempts, std::sync::atomic::Ordering::SeqCst);
    assert!(attempts >= 3, "the refused delivery was retried");
    handle.stop(false).await;
}

async fn steady_minute(db: &TestDatabase, services: &[&str], minute: Minute) {
    for service in services {
        write_counts(db, service, minute, 2 + (minute.0 % 3) as u64, 20).await;
    }
}

async fn verdict(db: &TestDatabase, service: &str) -> store::status::ServiceStatus {
    let mut conn = connect(db).await;
    store::status::of_services(&mut conn, &[service.to_owned()])
        .await
        .unwrap()
        .remove(0)
}

/// A shipper that buffered sends 60 errors stamped three minutes ago. They were ignored,
/// then poisoned the baseline (2.9 ± 10.6) so that a later burst of 20 was missed while an
/// identical control service opened. Now the changed minute is judged when its data
/// arrives, the incident says it opened from late data, and the minute stays out of the
/// baseline. Data later than the lateness window opens nothing and changes no baseline,
/// whether the detector was running or restarts.
#[tokio::test]
async fn late_errors_are_judged_and_never_poison_the_baseline() {
    let db = TestDatabase::create().await;
    let services = ["late", "control"];
    let t = Minute::containing(Utc::now()).minus(30);
    for back in 1..=40 {
        steady_minute(&db, &services, t.minus(back)).await;
    }
    let app = detector::Application::build(settings(&db)).await.unwrap();
    let detector = app.detector();
    steady_minute(&db, &services, t).await;
    assert_eq!(detector.tick(at(t, 10)).await.unwrap().opened, 0);

    // 60 errors for three minutes ago arrive now.
    let late = t.minus(3);
    write_events(&db, &events("late", at(late, 30), at(t, 20), 60, 0)).await;
    let report = detector.tick(at(t, 30)).await.unwrap();
    assert_eq!(report.opened, 1, "{report:?}");
    let found = incidents_of(&db).await;
    assert_eq!(found[0].1, "late");
    let mut conn = connect(&db).await;
    let row = store::incidents::find(&mut conn, found[0].0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.first_minute, late.start());
    assert_eq!(row.opened_at, at(t, 30));
    assert_eq!(row.opening.unwrap().late_by_minutes, Some(2));
    let reasons: Vec<String> = incident_events::table
        .filter(incident_events::incident_id.eq(found[0].0))
        .select(incident_events::reason)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(reasons[0].contains("arrived late"), "{reasons:?}");

    // Data later than the lateness window: nothing opens, and the running detector's
    // baseline keeps the minute as it judged it.
    let too_late = t.minus(20);
    write_events(&db, &events("control", at(too_late, 30), at(t, 40), 60, 0)).await;
    // Quiet minutes: the late incident resolves.
    for minute in 1..=9 {
        steady_minute(&db, &services, t.plus(minute)).await;
        let report = detector.tick(at(t.plus(minute), 5)).await.unwrap();
        assert_eq!(report.opened + report.reopened, 0, "{report:?}");
    }
    assert_eq!(incidents_of(&db).await[0].2, "resolved");
    for service in services {
        let baseline = verdict(&db, service).await;
        assert!(
            (baseline.baseline_mean - 3.0).abs() < 0.2 && baseline.baseline_stddev < 1.0,
            "{service}: the late minute entered the baseline: {baseline:?}"
        );
    }
    // A detector that starts now reads the whole horizon and judges the too-late minute
    // afresh: anomalous, so out of its baselines too. (Unshared: a second replica would
    // take half the services from the first.)
    let restarted = detector::Application::build(settings(&db)).await.unwrap();
    assert_eq!(
        restarted
            .detector()
            .unshared()
            .tick(at(t.plus(9), 30))
            .await
            .unwrap()
            .opened,
        0
    );
    let baseline = verdict(&db, "control").await;
    assert!(baseline.baseline_stddev < 1.0, "{baseline:?}");

    // A real burst of 20 errors opens on both services alike.
    let burst = t.plus(10);
    for service in services {
        write_counts(&db, service, burst, 20, 20).await;
    }
    let report = detector.tick(at(burst, 40)).await.unwrap();
    assert_eq!(report.opened + report.reopened, 2, "{report:?}");
    assert_eq!(detector.metrics().minutes_unjudged.get(), 0);
    assert!(detector.metrics().late_minutes.get() >= 1);
}

/// `threesigma demo` (and any shipper catching up) sends a new service's history at once,
/// most of it older than the lateness window. A running detector reads a service it has not
/// seen over its whole horizon, so that history is its baseline and a burst right after
/// opens; the silence before a service's first event is not a baseline (no incident for a
/// service merely appearing).
#[tokio::test]
async fn a_new_service_with_backfilled_history_is_judged_against_it() {
    let db = TestDatabase::create().await;
    let t = Minute::containing(Utc::now()).minus(5);
    for back in 1..=40 {
        steady_minute(&db, &["old"], t.minus(back)).await;
    }
    let app = detector::Application::build(settings(&db)).await.unwrap();
    let detector = app.detector();
    assert_eq!(detector.tick(at(t, 5)).await.unwrap().opened, 0);
    // "new" arrives with 30 minutes of history, all at once.
    for back in 1..=30 {
        write_counts(&db, "new", t.minus(back), 2 + (back % 3) as u64, 20).await;
    }
    let report = detector.tick(at(t, 15)).await.unwrap();
    assert_eq!(report.opened, 0, "{report:?}");
    write_counts(&db, "new", t, 40, 20).await;
    let report = detector.tick(at(t, 45)).await.unwrap();
    assert_eq!(report.opened, 1, "{report:?}");
    // The verdict on the last complete minute (t - 1): the 29 minutes of history before it.
    let baseline = verdict(&db, "new").await;
    assert_eq!(baseline.baseline_minutes, 29, "{baseline:?}");
    assert_eq!(detector.metrics().minutes_unjudged.get(), 0);
}

/// A detector that starts judges the minutes of its lateness window it has not seen (it
/// catches up on what happened while it was down). Minutes that already held an incident
/// are not new evidence: a restart escalated a reopened incident from the burst of its
/// first episode ("escalated: evidence grew to critical", no new errors).
#[tokio::test]
async fn a_restart_does_not_escalate_from_minutes_already_judged() {
    let setup = setup(60).await;
    let detector = setup.app.detector();
    detector.tick(at(setup.burst, 40)).await.unwrap();
    let id = incidents_of(&setup.db).await[0].0;
    resolve_as_operator(&setup.db, id, at(setup.burst.plus(1), 5)).await;
    let mut conn = connect(&setup.db).await;
    // A smaller burst two minutes later reopens it as a warning.
    let again = setup.burst.plus(2);
    write_counts(&setup.db, "checkout", again, 16, 20).await;
    let report = detector.tick(at(again, 40)).await.unwrap();
    assert_eq!(report.reopened, 1, "{report:?}");
    let row = store::incidents::find(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.severity, domain::Severity::Warning, "{}", row.title);

    let restarted = detector::Application::build(settings(&setup.db))
        .await
        .unwrap();
    let report = restarted
        .detector()
        .unshared()
        .tick(at(again, 50))
        .await
        .unwrap();
    assert_eq!(report.opened + report.reopened, 0, "{report:?}");
    assert_eq!(
        timeline(&setup.db, id).await,
        ["opened", "resolved", "reopened"]
    );
    let row = store::incidents::find(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.severity, domain::Severity::Warning);
    assert_eq!(row.current_count, 16);
    // Nothing arrived late: a start is not late data.
    assert_eq!(restarted.detector().metrics().late_minutes.get(), 0);
}

/// Eight hours of clumpy errors (variance several times the mean) teach the detector that
/// service's dispersion, which then floors its predictive variance; a Poisson-like service
/// keeps 1, and a service with an hour of history has no profile yet.
#[tokio::test]
async fn services_with_hours_of_history_get_a_learned_dispersion() {
    let db = TestDatabase::create().await;
    let t = Minute::containing(Utc::now()).minus(5);
    let clumps = [0, 0, 0, 9, 0, 1, 0, 2];
    let mut batch = Vec::new();
    for back in 1..=480_i64 {
        let minute = t.minus(back);
        let at = minute.start() + Duration::seconds(30);
        let errors = clumps[(back % 8) as usize];
        batch.extend(events("clumpy", at, at, errors, 20));
        batch.extend(events("steady", at, at, 2 + (back % 3) as u64, 20));
        if back <= 60 {
            batch.extend(events("newcomer", at, at, 2 + (back % 3) as u64, 20));
        }
    }
    write_events(&db, &batch).await;
    let app = detector::Application::build(settings(&db)).await.unwrap();
    let report = app.detector().tick(at(t, 5)).await.unwrap();
    assert_eq!(
        report.opened, 0,
        "clumps are this service's normal: {report:?}"
    );
    let learned = |service: &'static str| {
        let db = &db;
        async move {
            let config: domain::DetectionConfig =
                serde_json::from_value(verdict(db, service).await.config.unwrap()).unwrap();
            (config.min_dispersion, config.min_rate_dispersion)
        }
    };
    let (dispersion, rate_dispersion) = learned("clumpy").await;
    assert!(dispersion > 3.0, "{dispersion}");
    assert!(rate_dispersion > 3.0, "{rate_dispersion}");
    assert_eq!(learned("steady").await, (1.0, 1.0));
    assert_eq!(learned("newcomer").await, (1.0, 1.0));
    assert_eq!(app.detector().metrics().profiles_learned.get(), 2);
}

async fn rhythm(db: &TestDatabase, service: &str) -> Option<domain::detection::Rhythm> {
    let config: domain::DetectionConfig =
        serde_json::from_value(verdict(db, service).await.config.unwrap()).unwrap();
    config.rhythm
}

/// Four days of office hours (six errors a minute from 08:00 to 20:00 UTC, one at night)
/// teach a service its daily rhythm, recorded with the settings it is judged with; a flat
/// service and one with a single day of history get none.
#[tokio::test]
async fn services_with_days_of_history_learn_their_daily_rhythm() {
    let db = TestDatabase::create().await;
    let t = Minute::containing(Utc::now()).minus(5);
    let mut conn = connect(&db).await;
    let error = domain::Level::Error.as_i16();
    for (service, days, day_errors, night_errors) in [
        ("office", 4, 6, 1),
        ("flat", 4, 3, 3),
        ("newcomer", 1, 6, 1),
    ] {
        diesel::sql_query(
            "INSERT INTO log_counts (service, minute, level, shard, n) \
             SELECT $1, m, $2, 0, CASE WHEN extract(hour FROM m AT TIME ZONE 'UTC') BETWEEN 8 AND 19 \
                                      THEN $3 ELSE $4 END \
             FROM generate_series($5::timestamptz, $6::timestamptz, interval '1 minute') AS m",
        )
        .bind::<diesel::sql_types::Text, _>(service)
        .bind::<diesel::sql_types::SmallInt, _>(error)
        .bind::<diesel::sql_types::Integer, _>(day_errors)
        .bind::<diesel::sql_types::Integer, _>(night_errors)
        .bind::<diesel::sql_types::Timestamptz, _>(t.minus(days * 1440).start())
        .bind::<diesel::sql_types::Timestamptz, _>(t.minus(1).start())
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let app = detector::Application::build(settings(&db)).await.unwrap();
    app.detector().tick(at(t, 5)).await.unwrap();
    let office = rhythm(&db, "office")
        .await
        .expect("four days of office hours");
    // Four days from now back span five calendar days; the partial ones count if 20 hours long.
    assert!((3..=4).contains(&office.days), "{office:?}");
    let (noon, midnight) = (Minute(12 * 60), Minute(0));
    assert!(
        office.level(noon) > 2.0 * office.level(midnight),
        "{office:?}"
    );
    // 07:50 → 08:40: the baseline of the half hour before 08:10 is the night's.
    let morning = Minute(8 * 60 + 10);
    assert!(office.rise(morning, morning, 30) > 1.5);
    assert_eq!(rhythm(&db, "flat").await, None);
    assert_eq!(rhythm(&db, "newcomer").await, None);
}
