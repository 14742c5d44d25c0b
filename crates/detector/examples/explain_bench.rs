//! Cost of one incident explanation (two bounded samples of the service's ERROR+ lines and
//! their comparison) with 256k log rows in the table and with 10M more, in two databases
//! measured alternately (three rounds of 21 each): the sample reads follow the sample's
//! size, not the table's. Run with `just bench-explain`
//! (`cargo run --release -p detector --example explain_bench`).
//!
//! The explained service, `checkout`, has 100 errors a minute of four templates from four
//! hosts for the hour before the incident and 1,000 a minute for its ten minutes (70% a new
//! message from one host), beside 2,000 info lines a minute; the other rows belong to 1,000
//! other services (5% errors) over the same two hours. Each explanation samples up to
//! 2,000 lines a side (the default `explain.sample_lines`).
//!
//! Uses the PostgreSQL server of BENCH_ADMIN_URL (default: the local one) and two scratch
//! databases `threesigma_bench_explain` and `threesigma_bench_explain_10m`, dropped at the
//! end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{sql, summary};

use chrono::Utc;
use detector::explain::{ExplainSettings, explain_incident};

const RUNS: usize = 21;

/// Times `RUNS` explanations of `incident`; also returns the last one.
async fn measure(pool: &store::DbPool, id: i64) -> (Vec<Duration>, domain::patterns::Explanation) {
    let mut conn = store::pool::connection(pool).await.unwrap();
    let incident = store::incidents::find(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    let settings = ExplainSettings::default();
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        let explanation = explain_incident(&mut conn, &incident, &settings, Utc::now())
            .await
            .unwrap();
        times.push(started.elapsed());
        last = Some(explanation.body);
    }
    (times, last.unwrap())
}

/// Where an explanation's time goes: the two sample reads, then the comparison.
async fn parts(pool: &store::DbPool, id: i64) {
    let mut conn = store::pool::connection(pool).await.unwrap();
    let incident = store::incidents::find(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let until = incident.last_fired_minute + chrono::Duration::minutes(1);
        let window = store::explanations::sample(
            &mut conn,
            "checkout",
            (incident.first_minute, until),
            17,
            2000,
            true,
        )
        .await
        .unwrap();
        let read_window = started.elapsed();
        let from = incident.first_minute - chrono::Duration::minutes(60);
        let baseline = store::explanations::sample(
            &mut conn,
            "checkout",
            (from, incident.first_minute),
            17,
            2000,
            true,
        )
        .await
        .unwrap();
        let read = started.elapsed();
        let explanation = domain::patterns::explain(&window.lines(), &baseline.lines(), &[], 10);
        println!(
            "10M rows: window read {read_window:.1?}, both reads {read:.1?}, comparison {:.1?} ({} templates)",
            started.elapsed() - read,
            explanation.patterns.len()
        );
    }
}

/// Rows of `service` for minutes `from..to` before the incident's end, `per_minute` a minute,
/// with message and attributes expressions in `i` (the row) and `m` (the minute).
fn rows(
    service: &str,
    level: i16,
    from: i64,
    to: i64,
    per_minute: i64,
    message: &str,
    host: &str,
) -> String {
    format!(
        "INSERT INTO logs (ts, service, level, message, attributes) \
         SELECT date_trunc('minute', now()) - make_interval(mins => m) \
                    + make_interval(secs => (i * 60.0 / {per_minute})), \
                '{service}', {level}, {message}, jsonb_build_object('host', {host}, 'region', 'eu-west-1') \
         FROM generate_series({from}, {to} - 1) m, generate_series(0, {per_minute} - 1) i"
    )
}

/// A scratch database with the checkout incident and `other_rows` rows of other services;
/// returns its URL and the incident's id.
async fn prepare(admin: &str, name: &str, other_rows: i64) -> (String, i64) {
    sql(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
    sql(admin, &format!("CREATE DATABASE {name}")).await;
    let url = store::pool::with_database(admin, name);
    store::migrate::run_pending(&url).await.unwrap();
    // checkout: the baseline hour (minutes 11..70 before now), the incident's ten minutes
    // (1..10), and its info lines all along.
    let old = "(ARRAY['Timeout after ' || (100 + i) || ' ms calling inventory for sku ' || (i * 7919), \
               'Connection reset by peer 10.2.' || (i % 9) || '.' || (i % 200) || ':5432', \
               'Cache miss for key cart:' || (i * 31) || ' after ' || (i % 4) || ' retries', \
               'Order ' || (i * 13) || ' rejected: stock reserved by ' || (i % 50) || ' carts'])[1 + i % 4]";
    let hosts = "'web-' || (1 + i % 4)";
    sql(&url, &rows("checkout", 17, 11, 71, 100, old, hosts)).await;
    sql(&url, &rows("checkout", 17, 1, 11, 300, old, hosts)).await;
    let new = "'PaymentGateway declined order ord-' || to_hex(m * 100000 + i) || ' amount ' || i || '.00 EUR: upstream 502'";
    sql(&url, &rows("checkout", 17, 1, 11, 700, new, "'web-7'")).await;
    let info = "'GET /cart/' || i || ' 200'";
    sql(&url, &rows("checkout", 9, 1, 71, 2000, info, hosts)).await;
    sql(
        &url,
        &format!(
            "INSERT INTO logs (ts, service, level, message, attributes) \
             SELECT now() - make_interval(secs => (i % 7200)), 'svc-' || (i % 1000), \
                    CASE WHEN i % 20 = 0 THEN 17 ELSE 9 END, 'request ' || i || ' served', \
                    '{{\"host\":\"web-1\"}}' \
             FROM generate_series(1, {other_rows}) i"
        ),
    )
    .await;
    // The rollups ingest would have written with these rows.
    sql(
        &url,
        "INSERT INTO log_counts (service, minute, level, shard, n) \
         SELECT service, date_trunc('minute', ts), level, 0, count(*) FROM logs GROUP BY 1, 2, 3",
    )
    .await;
    sql(
        &url,
        "INSERT INTO incidents (service, signal, status, severity, title, opened_at, \
             last_evaluated_at, first_minute, last_fired_minute, current_z, peak_z, current_count, \
             current_total, peak_count, baseline_mean, baseline_stddev, baseline_minutes, \
             baseline_total_mean, algorithm, z_threshold, min_count) \
         VALUES ('checkout', 'error_count', 'open', 'critical', 'bench', now(), now(), \
             date_trunc('minute', now()) - interval '10 minutes', \
             date_trunc('minute', now()) - interval '1 minute', 40, 40, 1000, 3000, 1000, \
             100, 10, 30, 2100, 'negative_binomial', 3, 5)",
    )
    .await;
    sql(&url, "VACUUM ANALYZE").await;
    let mut conn = store::pool::connect(&url).await.unwrap();
    let id = store::explanations::pending(&mut conn, &store::scope::Scope::All, 1)
        .await
        .unwrap()[0]
        .id;
    (url, id)
}

#[tokio::main]
async fn main() {
    let admin = std::env::var("BENCH_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let checkout_rows: i64 = 60 * 100 + 10 * 1000 + 70 * 2000;
    let (small_rows, large_rows) = (100_000, 10_000_000);
    let started = Instant::now();
    let (large_url, large_id) = prepare(&admin, "threesigma_bench_explain_10m", large_rows).await;
    eprintln!(
        "loaded {} rows in {:?}",
        checkout_rows + large_rows,
        started.elapsed()
    );
    let (small_url, small_id) = prepare(&admin, "threesigma_bench_explain", small_rows).await;
    sql(&admin, "CHECKPOINT").await;
    let small_pool = store::pool::build_pool(&small_url, &store::PoolSettings::default()).unwrap();
    let large_pool = store::pool::build_pool(&large_url, &store::PoolSettings::default()).unwrap();
    // Warm-up, then alternate, so both see the same machine.
    measure(&small_pool, small_id).await;
    measure(&large_pool, large_id).await;
    let (mut small, mut large) = (Vec::new(), Vec::new());
    let mut explanation = None;
    for _ in 0..3 {
        let (times, body) = measure(&small_pool, small_id).await;
        small.extend(times);
        let (times, _) = measure(&large_pool, large_id).await;
        large.extend(times);
        explanation = Some(body);
    }
    let (small, large) = (summary(small), summary(large));
    let explanation = explanation.unwrap();

    println!("| log rows | explanation median | p90 |");
    println!("|---|---|---|");
    for (rows, (median, p90)) in [
        (checkout_rows + small_rows, small),
        (checkout_rows + large_rows, large),
    ] {
        println!("| {rows} | {median:.1?} | {p90:.1?} |");
    }
    println!();
    println!(
        "median with {} rows / with {}: {:.2}x; median {} 50 ms",
        checkout_rows + large_rows,
        checkout_rows + small_rows,
        large.0.as_secs_f64() / small.0.as_secs_f64(),
        if large.0 <= Duration::from_millis(50) {
            "<="
        } else {
            ">"
        }
    );
    parts(&large_pool, large_id).await;
    println!();
    println!(
        "window {:?}, baseline {:?}",
        explanation.window, explanation.baseline
    );
    println!("{}", serde_json::to_string_pretty(&explanation).unwrap());
    drop((small_pool, large_pool));
    for name in ["threesigma_bench_explain", "threesigma_bench_explain_10m"] {
        sql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
}
