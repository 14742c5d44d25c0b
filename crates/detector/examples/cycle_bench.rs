//! Detector cycle time: one evaluation over 1,000 active services with 30-minute
//! baselines, first with 100k log rows in the database, then with 10M, to show that the
//! detector reads only the rollups. Run with `just bench-detector`
//! (`cargo run --release -p detector --example cycle_bench`).
//!
//! Four kinds of cycle: `steady` (ticks within a minute: the detector re-reads only the
//! lateness window), `new minute` (each tick a minute later: every service's completed
//! minute is judged and its verdict written to `service_status`), `cold` (a detector
//! that has just started: it reads the whole look-back and judges every minute of it), and
//! `learning` (the cycles after a start, each relearning 8 services' profiles and daily
//! rhythms from a week of rollups: 40 more services have a week of history).
//!
//! Uses the PostgreSQL server of BENCH_ADMIN_URL (default: the local one) and a scratch
//! database `threesigma_bench_detector`, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{sql, summary};

use chrono::Utc;

const SERVICES: i64 = 1_000;
const TICKS: usize = 30;

/// Steady cycles: ticks at the real time, within the same minute or the next.
async fn steady(app: &detector::Application) -> ((Duration, Duration), usize) {
    let mut times = Vec::with_capacity(TICKS);
    let mut services = 0;
    for _ in 0..TICKS {
        let started = Instant::now();
        let report = app.detector().tick(Utc::now()).await.unwrap();
        times.push(started.elapsed());
        services = report.services;
    }
    (summary(times), services)
}

/// Cycles that each begin a new minute (the clock moved on a minute since the last).
async fn new_minutes(app: &detector::Application) -> (Duration, Duration) {
    let detector = app.detector().unshared();
    let base = Utc::now();
    detector.tick(base).await.unwrap();
    let mut times = Vec::with_capacity(10);
    for minutes in 1..=10 {
        let started = Instant::now();
        detector
            .tick(base + chrono::Duration::minutes(minutes))
            .await
            .unwrap();
        times.push(started.elapsed());
    }
    summary(times)
}

/// Cycles of a detector that has just started.
async fn cold(app: &detector::Application) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(5);
    for _ in 0..5 {
        let detector = app.detector().unshared();
        let started = Instant::now();
        detector.tick(Utc::now()).await.unwrap();
        times.push(started.elapsed());
    }
    summary(times)
}

/// Cycles after a start, while profiles are learned: the 8 services each relearns first
/// (by name) have a week of history.
async fn learning(app: &detector::Application) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(HISTORY_SERVICES as usize / 8);
    let detector = app.detector().unshared();
    detector.tick(Utc::now()).await.unwrap();
    for _ in 1..HISTORY_SERVICES / 8 {
        let started = Instant::now();
        detector.tick(Utc::now()).await.unwrap();
        times.push(started.elapsed());
    }
    summary(times)
}

/// Services with a week of rollups besides the 1,000 (named to be relearned first).
const HISTORY_SERVICES: i64 = 40;

/// Every kind of cycle: steady, new minute, cold, learning.
async fn measure(app: &detector::Application) -> [(Duration, Duration); 4] {
    let (steady, _) = steady(app).await;
    [
        steady,
        new_minutes(app).await,
        cold(app).await,
        learning(app).await,
    ]
}

#[tokio::main]
async fn main() {
    let admin = std::env::var("BENCH_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = "threesigma_bench_detector";
    sql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
    sql(&admin, &format!("CREATE DATABASE {name}")).await;
    let url = store::pool::with_database(&admin, name);
    store::migrate::run_pending(&url).await.unwrap();

    // 1,000 services, 45 minutes of rollups: errors and infos, from two ingest writers.
    sql(
        &url,
        &format!(
            "INSERT INTO log_counts (service, minute, level, shard, n) \
             SELECT 'svc-' || s, date_trunc('minute', now()) - make_interval(mins => m), l, w, \
                    CASE WHEN l = 17 THEN 1 + (random() * 4)::int ELSE 40 + (random() * 20)::int END \
             FROM generate_series(0, {} - 1) s, generate_series(0, 44) m, unnest(ARRAY[9, 17]) l, generate_series(0, 1) w",
            SERVICES
        ),
    )
    .await;
    // 40 more services with a week of error rollups, busier by day: what profiles and
    // daily rhythms are learned from (BENCH_NO_HISTORY=1: without them, as the runs before
    // the daily rhythm measured).
    let history = std::env::var_os("BENCH_NO_HISTORY").is_none();
    if history {
        sql(
        &url,
        &format!(
            "INSERT INTO log_counts (service, minute, level, shard, n) \
             SELECT 'aaa-' || s, date_trunc('minute', now()) - make_interval(mins => m), 17, 0, \
                    CASE WHEN (m / 60) % 24 BETWEEN 8 AND 19 THEN 4 ELSE 1 END + (random() * 3)::int \
             FROM generate_series(0, {HISTORY_SERVICES} - 1) s, generate_series(0, 7 * 1440 - 1) m"
            ),
        )
        .await;
    }
    let insert_logs = |rows: i64| {
        format!(
            "INSERT INTO logs (ts, service, level, message, attributes) \
             SELECT now() - make_interval(secs => (i % 2700)), 'svc-' || (i % {SERVICES}), \
                    CASE WHEN i % 20 = 0 THEN 17 ELSE 9 END, 'request ' || i || ' served', '{{\"host\":\"web-1\"}}' \
             FROM generate_series(1, {rows}) i"
        )
    };
    sql(&url, &insert_logs(100_000)).await;
    sql(&url, "VACUUM ANALYZE").await;

    let mut settings = detector::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = url.clone().into();
    let app = detector::Application::build(settings).await.unwrap();
    steady(&app).await; // warm-up: connections, caches
    let (_, services) = steady(&app).await;
    let small = measure(&app).await;
    eprintln!("cycles with 100k rows: {small:?}");
    if std::env::var_os("BENCH_SPLIT").is_some() {
        let pool = store::pool::build_pool(&url, &store::PoolSettings::default()).unwrap();
        let mut conn = store::pool::connection(&pool).await.unwrap();
        let now = domain::Minute::containing(Utc::now());
        for _ in 0..5 {
            let started = Instant::now();
            let rows = store::counts::minute_counts(
                &mut conn,
                now.minus(11).start(),
                now.start(),
                &store::scope::Scope::All,
                17,
            )
            .await
            .unwrap();
            eprintln!(
                "minute_counts: {} rows in {:?}",
                rows.len(),
                started.elapsed()
            );
        }
        return;
    }

    let started = Instant::now();
    sql(&url, &insert_logs(9_900_000)).await;
    sql(&url, "VACUUM ANALYZE").await;
    eprintln!("loaded 9.9M more log rows in {:?}", started.elapsed());
    steady(&app).await;
    let large = measure(&app).await;

    println!("| log rows | services evaluated | cycle | median | p90 |");
    println!("|---|---|---|---|---|");
    let kinds = ["steady", "new minute", "cold start", "learning"];
    for (rows, cycles) in [("100,000", &small), ("10,000,000", &large)] {
        for (kind, (median, p90)) in kinds.iter().zip(cycles.iter()) {
            println!("| {rows} | {services} | {kind} | {median:.1?} | {p90:.1?} |");
        }
    }
    println!();
    for (index, kind) in kinds.iter().enumerate() {
        let (small_median, large_median) = (small[index].0, large[index].0);
        println!(
            "{kind}: median with 10M rows / with 100k rows: {:.2}x (target <= 1.5x); median {} 100 ms",
            large_median.as_secs_f64() / small_median.as_secs_f64(),
            if large_median <= Duration::from_millis(100) {
                "<="
            } else {
                ">"
            }
        );
    }
    drop(app);
    sql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
}
