//! Log search at scale: 10 M log rows over 24 hours in 100 services, written the way ingest
//! writes them (terms and search marks included), the term index built by the indexer, then
//! each kind of search through the API (a page of 50), across all services and within one,
//! against `/healthz` and a full substring scan measured in the same run. Also: how fast
//! the indexer builds, what a search costs while nothing is indexed yet, and the disk the
//! search structures take beside the log heap. Run with `just bench-search`
//! (`cargo run --release -p query --example search_bench`); `BENCH_ROWS` changes the size.
//!
//! Uses the PostgreSQL server of BENCH_ADMIN_URL (default: the local one) and a scratch
//! database `threesigma_bench_search`, dropped at the end (kept with `BENCH_KEEP=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use auth::Scope;
use chrono::Utc;
use domain::{EventLimits, LogEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SERVICES: u64 = 100;
const RUNS: usize = 30;
const BATCH: usize = 20_000;
/// The rare word, in this many rows (some of them in the one service searched alone).
const RARE: u64 = 8;

/// A small, fixed pseudo-random sequence (xorshift64*), so every run stores the same logs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn hex(&mut self, digits: usize) -> String {
        let mut text = format!("{:016x}{:016x}", self.next(), self.next());
        text.truncate(digits);
        text
    }
}

/// Line `i` of the corpus: service, level, message and attributes, with the ids, numbers
/// and addresses real services log.
fn line(rng: &mut Rng, i: u64) -> (String, &'static str, String, serde_json::Value) {
    let service = format!("svc-{}", i % SERVICES);
    let message = match rng.below(12) {
        0 => format!(
            "GET /api/v1/orders/{} 200 {}ms user={}",
            rng.below(1_000_000),
            rng.below(300),
            rng.hex(8)
        ),
        1 => format!(
            "payment {} declined for card ending {:04}: insufficient funds",
            rng.hex(12),
            rng.below(10_000)
        ),
        2 => format!(
            "upstream timeout after {} ms calling inventory-{} (attempt {})",
            rng.below(5000),
            rng.below(9),
            rng.below(5)
        ),
        3 => format!(
            "User {} logged in from {}.{}.{}.{}",
            rng.hex(10),
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        4 => format!(
            "cache miss for key session:{}, fetching from origin in {} ms",
            rng.hex(32),
            rng.below(90)
        ),
        5 => format!(
            "worker {} finished job {}-{}: processed {} items, {} failed",
            rng.below(32),
            rng.hex(8),
            rng.hex(4),
            rng.below(1000),
            rng.below(10)
        ),
        6 => format!(
            "read tcp 10.0.{}.{}:{}: connection reset by peer",
            rng.below(256),
            rng.below(256),
            rng.below(65536)
        ),
        7 => format!(
            "query took {} ms: SELECT * FROM accounts WHERE id = {}",
            rng.below(2000),
            rng.below(100_000)
        ),
        8 => format!("health check ok in {} ms", rng.below(20)),
        9 => format!(
            "retrying publish to topic events-{} after timeout, trace={}",
            rng.below(12),
            rng.hex(32)
        ),
        10 => format!(
            "POST /api/v1/cart/{}/items 201 {}ms",
            rng.hex(12),
            rng.below(400)
        ),
        _ => format!(
            "gc pause {} ms, heap {} MiB of {} MiB",
            rng.below(50),
            rng.below(4096),
            4096
        ),
    };
    let level = match rng.below(40) {
        0 => "error",
        1..=3 => "warn",
        _ => "info",
    };
    let region = ["eu-west-1", "us-east-1", "ap-south-1"][rng.below(3) as usize];
    let attributes = json!({
        "host": format!("web-{}", rng.below(40)),
        "region": region,
        "request_id": rng.hex(16),
    });
    (service, level, message, attributes)
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Writes rows `from..to` of the corpus through ingest's batch writer.
async fn load(url: String, from: u64, to: u64, total: u64) {
    let config = store::pool::connection_config(&url, &store::PoolSettings::default()).unwrap();
    let mut writer = store::bulk::BulkConnection::connect(&config).await.unwrap();
    let now = Utc::now();
    let span_micros: i64 = 24 * 3600 * 1_000_000 - 120 * 1_000_000;
    let limits = EventLimits {
        max_age: chrono::Duration::days(2),
        ..EventLimits::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ from.wrapping_add(1));
    let rare_every = total / RARE;
    let mut batch = Vec::with_capacity(BATCH);
    for i in from..to {
        let (mut service, level, mut message, attributes) = line(&mut rng, i);
        if i % rare_every == rare_every / 2 {
            message.push_str(" zqxjvk");
            if (i / rare_every).is_multiple_of(2) {
                service = "svc-7".to_owned();
            }
        }
        // Oldest first, evenly over the day up to two minutes ago.
        let offset = span_micros - (i as i64) * (span_micros / total as i64);
        let ts = now - chrono::Duration::microseconds(offset.max(0) + 120 * 1_000_000);
        batch.push(
            LogEvent::from_json(
                json!({"service": service, "level": level, "message": message, "ts": ts.to_rfc3339(), "attributes": attributes}),
                now,
                &limits,
            )
            .unwrap(),
        );
        if batch.len() == BATCH || i + 1 == to {
            let refs: Vec<&LogEvent> = batch.iter().collect();
            writer
                .write_new_batch(&refs, 0, store::bulk::BulkMethod::Copy)
                .await
                .unwrap();
            batch.clear();
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median time of `path` over `runs` requests, and the rows its (first) page held.
async fn timed(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    runs: usize,
) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut rows = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        times.push(started.elapsed());
        rows = body["data"].as_array().map_or(0, Vec::len);
    }
    (median(times), rows)
}

#[tokio::main]
async fn main() {
    let admin_url = std::env::var("BENCH_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let total: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(10_000_000);
    let name = "threesigma_bench_search";
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
    let half = total / 2;
    tokio::join!(
        load(url.clone(), 0, half, total),
        load(url.clone(), half, total, total)
    );
    db.batch_execute("VACUUM ANALYZE").await.unwrap();
    let loaded = started.elapsed();
    eprintln!("{total} rows written in {loaded:?}");

    let mut settings = query::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = url.clone().into();
    settings.auth = auth::AuthSettings {
        secret: "benchmark-secret-0123456789abcdef".into(),
        ..auth::AuthSettings::default()
    };
    settings.rate_limit.per_second = 0;
    // The full-scan baselines run to the end instead of paging.
    settings.query.search_budget = Duration::from_secs(600);
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

    // Before the indexer has run: every block is pending and read in full.
    let (unindexed, unindexed_rows) =
        timed(&http, &base, "/api/v1/logs?q=zqxjvk&limit=50", &token, 1).await;

    let pool = store::pool::build_pool(&url, &store::PoolSettings::default()).unwrap();
    let started = Instant::now();
    let mut indexed_rows = 0;
    loop {
        let mut conn = pool.get().await.unwrap();
        let pass = store::search::index_pending(&mut conn, Utc::now(), 360)
            .await
            .unwrap()
            .unwrap();
        indexed_rows += pass.rows;
        if pass.left == 0 {
            break;
        }
    }
    let indexing = started.elapsed();
    db.batch_execute("VACUUM ANALYZE log_search_blocks, log_search_pending")
        .await
        .unwrap();

    let (healthz, _) = timed(&http, &base, "/healthz", &token, RUNS).await;
    let searches = [
        ("a word in 8 rows", "q=zqxjvk"),
        ("a word in no row", "q=qqqnothere"),
        ("a common word (1 row in 6)", "q=timeout"),
        (
            "a phrase (1 row in 12)",
            "q=%22connection%20reset%20by%20peer%22",
        ),
        ("an attribute (1 row in 40)", "attr.host=web-7"),
        (
            "two words and an attribute",
            "q=declined%20insufficient&attr.region=eu-west-1",
        ),
    ];
    println!(
        "{total} rows over 24 h in {SERVICES} services; loaded in {:.0} s; indexed by the indexer in {:.1} s ({:.0} rows/s).",
        loaded.as_secs_f64(),
        indexing.as_secs_f64(),
        indexed_rows as f64 / indexing.as_secs_f64()
    );
    println!();
    println!(
        "| search (page of 50) | all services | rows | ratio to /healthz | service=svc-7 | rows | ratio to /healthz |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, query) in searches {
        let (all, all_rows) = timed(
            &http,
            &base,
            &format!("/api/v1/logs?{query}&limit=50"),
            &token,
            RUNS,
        )
        .await;
        let (one, one_rows) = timed(
            &http,
            &base,
            &format!("/api/v1/logs?{query}&service=svc-7&limit=50"),
            &token,
            RUNS,
        )
        .await;
        println!(
            "| {label} | {all:.1?} | {all_rows} | {:.0}x | {one:.1?} | {one_rows} | {:.0}x |",
            all.as_secs_f64() / healthz.as_secs_f64(),
            one.as_secs_f64() / healthz.as_secs_f64()
        );
    }
    println!("| `/healthz` (baseline) | {healthz:.1?} | | 1x | | | |");

    // The same rare word by a substring scan of the whole day, as before the index.
    let (scan, scan_rows) = timed(
        &http,
        &base,
        "/api/v1/logs?q=zqxjvk&match=substring&limit=50",
        &token,
        3,
    )
    .await;
    let (rare, _) = timed(&http, &base, "/api/v1/logs?q=zqxjvk&limit=50", &token, RUNS).await;
    println!();
    println!(
        "A word in 8 rows: {rare:.1?} through the index; {scan:.1?} by a substring scan of the day ({scan_rows} rows, {:.0}x slower); {unindexed:.1?} before the indexer had run ({unindexed_rows} rows: every block pending, read in full).",
        scan.as_secs_f64() / rare.as_secs_f64()
    );

    let size = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let heap = size(
        "SELECT sum(pg_table_size(inhrelid))::bigint FROM pg_inherits WHERE inhparent = 'logs'::regclass",
    )
    .await;
    let terms = size("SELECT sum(pg_column_size(terms))::bigint FROM logs").await;
    let blocks = size(
        "SELECT (pg_total_relation_size('log_search_blocks') + pg_total_relation_size('log_search_pending'))::bigint",
    )
    .await;
    let mib = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
    println!();
    println!(
        "Disk: log heap {:.0} MiB (terms column included: {:.0} MiB); term index {:.0} MiB. Search structures (terms + index) = {:.2}x the log heap without them.",
        mib(heap),
        mib(terms),
        mib(blocks),
        (terms + blocks) as f64 / (heap - terms) as f64
    );
    shutdown.cancel();
    if std::env::var_os("BENCH_KEEP").is_none() {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}
