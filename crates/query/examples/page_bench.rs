//! Keyset pages stay flat: with 1M incidents and 10M logs, page 10,000 of 50 costs what
//! page 1 costs; the same page by OFFSET is measured beside it for contrast. Then the
//! console's incidents page and incident page on the same data: every request the browser
//! makes for each (the document, its script, style and icon, and the API calls the script
//! makes), each one's median time and bytes, against `/healthz` measured in the same run.
//! Run with `just bench-query` (`cargo run --release -p query --example page_bench`).
//!
//! Uses the PostgreSQL server of BENCH_ADMIN_URL (default: the local one) and a scratch
//! database `threesigma_bench_query`, dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use auth::Scope;
use chrono::{DateTime, Utc};
use query::cursor::{CursorKind, encode};
use tokio_util::sync::CancellationToken;

const PAGE: i64 = 50;
const DEEP_PAGE: i64 = 10_000;
const RUNS: usize = 30;

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn http_median(http: &reqwest::Client, url: &str, token: &str) -> Duration {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let response = http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["data"].as_array().unwrap().len(), PAGE as usize);
        times.push(started.elapsed());
    }
    median(times)
}

async fn sql_median(db: &tokio_postgres::Client, statement: &str, runs: usize) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let rows = db.query(statement, &[]).await.unwrap();
        assert_eq!(rows.len(), PAGE as usize);
        times.push(started.elapsed());
    }
    median(times)
}

#[tokio::main]
async fn main() {
    let admin_url = std::env::var("BENCH_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = "threesigma_bench_query";
    let admin = client(&admin_url).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = store::pool::with_database(&admin_url, name);
    store::migrate::run_pending(&url).await.unwrap();
    let db = client(&url).await;

    let started = Instant::now();
    db.batch_execute(
        "INSERT INTO incidents (service, signal, status, severity, title, opened_at, last_evaluated_at, \
            first_minute, last_fired_minute, current_z, peak_z, current_count, peak_count, baseline_mean, \
            baseline_stddev, baseline_minutes, algorithm, z_threshold, min_count, resolved_at) \
         SELECT 'svc-' || (i % 1000), 'error_count', 'resolved', CASE WHEN i % 7 = 0 THEN 'critical' ELSE 'warning' END, \
                'errors up', now() - make_interval(secs => i * 30), now(), now(), now(), 4, 5, 20, 25, 2, 1, 30, \
                'negative_binomial', 3, 5, now() \
         FROM generate_series(1, 1000000) i",
    )
    .await
    .unwrap();
    eprintln!("1M incidents in {:?}", started.elapsed());
    let started = Instant::now();
    db.batch_execute(
        "INSERT INTO logs (ts, service, level, message, attributes) \
         SELECT now() - make_interval(secs => (i % 2592000)::float8 + (i % 1000) / 1000.0), 'svc-' || (i % 1000), \
                CASE WHEN i % 20 = 0 THEN 17 ELSE 9 END, 'request ' || i || ' served', '{}' \
         FROM generate_series(1, 10000000) i",
    )
    .await
    .unwrap();
    // The console's view: 20 active incidents among the million, one on a busy service
    // (an event a second for three hours, errors every few seconds, a burst for the last
    // hour), with the per-minute rollups ingest keeps.
    db.batch_execute(
        "INSERT INTO incidents (service, signal, status, severity, title, opened_at, last_evaluated_at, \
            first_minute, last_fired_minute, current_z, peak_z, current_count, peak_count, baseline_mean, \
            baseline_stddev, baseline_minutes, algorithm, z_threshold, min_count) \
         SELECT 'hot-' || i, 'error_count', CASE WHEN i % 2 = 0 THEN 'open' ELSE 'acknowledged' END, 'critical', \
                'errors up', now() - make_interval(mins => 60 + i), now(), \
                date_trunc('minute', now() - make_interval(mins => 60 + i)), date_trunc('minute', now()), \
                9, 12, 60, 80, 3, 1.5, 30, 'negative_binomial', 3, 5 \
         FROM generate_series(0, 19) i; \
         INSERT INTO logs (ts, service, level, message, attributes) \
         SELECT now() - make_interval(secs => i), 'hot-0', \
                CASE WHEN i < 3600 AND i % 2 = 0 THEN 17 WHEN i % 20 = 0 THEN 17 ELSE 9 END, \
                'GET /checkout ' || i || ' upstream timed out after 3000 ms', '{\"region\": \"eu-west-1\"}' \
         FROM generate_series(0, 10799) i; \
         INSERT INTO log_counts (service, minute, level, n) \
         SELECT service, date_trunc('minute', ts), level, count(*) FROM logs GROUP BY 1, 2, 3;",
    )
    .await
    .unwrap();
    db.batch_execute("VACUUM ANALYZE").await.unwrap();
    eprintln!("10M logs and their rollups in {:?}", started.elapsed());

    let mut settings = query::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = url.clone().into();
    settings.auth = auth::AuthSettings {
        secret: "benchmark-secret-0123456789abcdef".into(),
        ..auth::AuthSettings::default()
    };
    settings.rate_limit.per_second = 0;
    let token = settings
        .auth
        .signer()
        .unwrap()
        .unwrap()
        .issue("bench", &[Scope::Read], None, Duration::from_secs(3600))
        .unwrap()
        .token;
    let app = query::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    let http = reqwest::Client::new();

    let offset = (DEEP_PAGE - 1) * PAGE;
    let key = |table: &str, at: &str| {
        format!(
            "SELECT {at}, id FROM {table} ORDER BY {at} DESC, id DESC OFFSET {} LIMIT 1",
            offset - 1
        )
    };
    let row = db
        .query_one(&key("incidents", "opened_at"), &[])
        .await
        .unwrap();
    let incident_cursor = encode(
        CursorKind::Incidents,
        row.get::<_, DateTime<Utc>>(0),
        row.get(1),
    );
    let row = db.query_one(&key("logs", "ts"), &[]).await.unwrap();
    let log_cursor = encode(CursorKind::Logs, row.get::<_, DateTime<Utc>>(0), row.get(1));

    let incidents_first = http_median(
        &http,
        &format!("{base}/api/v1/incidents?limit={PAGE}"),
        &token,
    )
    .await;
    let incidents_deep = http_median(
        &http,
        &format!("{base}/api/v1/incidents?limit={PAGE}&cursor={incident_cursor}"),
        &token,
    )
    .await;
    let incidents_offset = sql_median(
        &db,
        &format!(
            "SELECT * FROM incidents ORDER BY opened_at DESC, id DESC OFFSET {offset} LIMIT {PAGE}"
        ),
        10,
    )
    .await;
    let logs_first = http_median(&http, &format!("{base}/api/v1/logs?limit={PAGE}"), &token).await;
    let logs_deep = http_median(
        &http,
        &format!("{base}/api/v1/logs?limit={PAGE}&cursor={log_cursor}"),
        &token,
    )
    .await;
    let logs_offset = sql_median(
        &db,
        &format!("SELECT * FROM logs ORDER BY ts DESC, id DESC OFFSET {offset} LIMIT {PAGE}"),
        5,
    )
    .await;

    println!(
        "| listing | page 1 (API) | page {DEEP_PAGE} (API, keyset) | ratio | page {DEEP_PAGE} by OFFSET (SQL alone) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| incidents (1M rows) | {incidents_first:.1?} | {incidents_deep:.1?} | {:.2}x | {incidents_offset:.1?} |",
        incidents_deep.as_secs_f64() / incidents_first.as_secs_f64()
    );
    println!(
        "| logs (10M rows) | {logs_first:.1?} | {logs_deep:.1?} | {:.2}x | {logs_offset:.1?} |",
        logs_deep.as_secs_f64() / logs_first.as_secs_f64()
    );
    console_pages(&http, &base, &token, &db).await;
    shutdown.cancel();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// Median time and bytes of one request the console makes.
async fn fetch(http: &reqwest::Client, url: &str, cookie: &str) -> (Duration, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let response = http.get(url).header("Cookie", cookie).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let headers: usize = response
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        bytes = headers + response.bytes().await.unwrap().len();
        times.push(started.elapsed());
    }
    (median(times), bytes)
}

/// The requests of the console's incidents page and of an incident page, as its script
/// makes them, with the session cookie.
async fn console_pages(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    db: &tokio_postgres::Client,
) {
    let cookie = format!("threesigma_session={token}");
    let (health, _) = fetch(http, &format!("{base}/healthz"), "").await;
    let row = db
        .query_one(
            "SELECT id, first_minute FROM incidents WHERE service = 'hot-0'",
            &[],
        )
        .await
        .unwrap();
    let (id, first): (i64, DateTime<Utc>) = (row.get(0), row.get(1));
    let since = (first - chrono::Duration::minutes(30)).timestamp();
    let until = Utc::now().timestamp();
    let shell = [
        "/console/app.js",
        "/console/app.css",
        "/console/icon.svg",
        "/api/v1/auth/session",
    ];
    let pages: [(&str, Vec<String>); 2] = [
        (
            "incidents",
            ["/incidents".to_owned()]
                .into_iter()
                .chain(shell.iter().map(|path| (*path).to_owned()))
                .chain([
                    "/api/v1/incidents?status=active&limit=50".to_owned(),
                    "/api/v1/incidents?status=resolved&limit=30".to_owned(),
                ])
                .collect(),
        ),
        (
            "incident",
            [format!("/incidents/{id}")]
                .into_iter()
                .chain(shell.iter().map(|path| (*path).to_owned()))
                .chain([
                    format!("/api/v1/incidents/{id}"),
                    format!("/api/v1/services/hot-0/series?since={since}&until={until}"),
                    format!("/api/v1/incidents/{id}/logs?limit=50"),
                ])
                .collect(),
        ),
    ];
    println!();
    println!("/healthz (the baseline): {health:.1?}");
    println!();
    println!("| console page | request | median | bytes |");
    println!("|---|---|---|---|");
    for (page, paths) in pages {
        let mut total = Duration::ZERO;
        let mut slowest = Duration::ZERO;
        let mut bytes = 0;
        for path in paths {
            let (time, size) = fetch(http, &format!("{base}{path}"), &cookie).await;
            println!("| {page} | `{path}` | {time:.1?} | {size} |");
            total += time;
            slowest = slowest.max(time);
            bytes += size;
        }
        println!(
            "| **{page}** | all requests, one after another | **{total:.1?}** ({:.0}x /healthz; slowest one {slowest:.1?}) | **{bytes}** ({:.0} KB) |",
            total.as_secs_f64() / health.as_secs_f64(),
            bytes as f64 / 1024.0
        );
    }
}
