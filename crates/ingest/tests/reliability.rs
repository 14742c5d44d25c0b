//! Reliability of the real `threesigma-ingest` binary under faults, against PostgreSQL:
//! kill -9 under load, PostgreSQL stopped and restarted under load, SIGTERM with requests
//! in flight, and overload. Every event carries a unique id in its attributes, so what
//! was acknowledged can be counted in the database.
//!
//! The tests print what they measured; `cargo test -p ingest --test reliability --
//! --nocapture --test-threads 1` shows it (docs/RELIABILITY.md has a run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runtime::testing::{Service, ServiceCommand, free_port};
use serde_json::json;
use store::cluster::PrivateCluster;
use store::testing::TestDatabase;
use tokio::sync::Mutex;

/// These tests load the machine; they run one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The ingest binary on a free port, with `env` settings on top of small test pools.
fn spawn_ingest(database_url: &str, env: &[(&str, &str)]) -> Service {
    ServiceCommand::new(env!("CARGO_BIN_EXE_threesigma-ingest"))
        .env("DATABASE_URL", database_url)
        .env("THREESIGMA__SERVER__WORKERS", "1")
        .env("THREESIGMA__DATABASE__POOL_SIZE", "2")
        .env("THREESIGMA__INGEST__WRITERS", "2")
        .env("JWT_SECRET", auth::testing::SECRET)
        // A single token sends everything here: no per-token limit.
        .env("THREESIGMA__RATE_LIMIT__PER_SECOND", "0")
        .envs(env.iter().copied())
        .spawn()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A client builder that sends an ingest token.
fn authorized() -> reqwest::ClientBuilder {
    let token = auth::testing::token("reliability", &[auth::Scope::Ingest], None);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    reqwest::Client::builder().default_headers(headers)
}

/// What happened to one request.
#[derive(Debug, Clone)]
struct Outcome {
    uid: u64,
    /// HTTP status, or None for a connection-level failure.
    status: Option<u16>,
    started: Instant,
    finished: Instant,
}

/// Closed-loop load: `workers` tasks posting `events_per_request` events each, every
/// event with a unique `uid` attribute.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Outcome>>>,
}

impl Load {
    fn start(base: &str, workers: usize, events_per_request: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let client = authorized()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let tasks = (0..workers)
            .map(|_| {
                let (stop, acked, next, client) = (stop.clone(), acked.clone(), next.clone(), client.clone());
                let url = format!("{base}/api/v1/logs");
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    let mut failures_in_a_row = 0;
                    while !stop.load(Ordering::Relaxed) && failures_in_a_row < 20 {
                        let first = next.fetch_add(events_per_request, Ordering::Relaxed);
                        let body: String = (first..first + events_per_request)
                            .map(|uid| {
                                format!(
                                    "{}\n",
                                    json!({"service": "load", "level": "error", "message": "reliability",
                                           "attributes": {"uid": uid.to_string()}})
                                )
                            })
                            .collect();
                        let started = Instant::now();
                        let status = client
                            .post(&url)
                            .header("Content-Type", "application/x-ndjson")
                            .body(body)
                            .send()
                            .await
                            .map(|response| response.status().as_u16())
                            .ok();
                        if status == Some(200) {
                            acked.fetch_add(events_per_request, Ordering::Relaxed);
                        }
                        failures_in_a_row = if status.is_none() { failures_in_a_row + 1 } else { 0 };
                        if status.is_none() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        for uid in first..first + events_per_request {
                            outcomes.push(Outcome {
                                uid,
                                status,
                                started,
                                finished: Instant::now(),
                            });
                        }
                    }
                    outcomes
                })
            })
            .collect();
        Load { stop, acked, tasks }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    async fn wait_for_acked(&self, at_least: u64) {
        for _ in 0..600 {
            if self.acked() >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "load never reached {at_least} acknowledged events (got {})",
            self.acked()
        );
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.unwrap());
        }
        all
    }
}

/// Where the uids of [`probe`] requests start, far above any [`Load`]'s.
const PROBE_UIDS: u64 = 1 << 40;

/// One request of one event with `uid`.
async fn probe(base: String, uid: u64) -> Outcome {
    let client = authorized()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let status = client
        .post(format!("{base}/api/v1/logs"))
        .header("Content-Type", "application/x-ndjson")
        .body(
            json!({"service": "load", "level": "error", "message": "probe",
                   "attributes": {"uid": uid.to_string()}})
            .to_string(),
        )
        .send()
        .await
        .map(|response| response.status().as_u16())
        .ok();
    Outcome {
        uid,
        status,
        started,
        finished: Instant::now(),
    }
}

/// How many times each uid is stored.
async fn stored_uids(database_url: &str) -> HashMap<u64, u32> {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    use store::schema::logs;
    let mut conn = AsyncPgConnection::establish(database_url).await.unwrap();
    let uids: Vec<serde_json::Value> = logs::table
        .filter(logs::service.eq("load"))
        .select(logs::attributes)
        .load(&mut conn)
        .await
        .unwrap();
    let mut counts = HashMap::new();
    for attributes in uids {
        let uid: u64 = attributes["uid"].as_str().unwrap().parse().unwrap();
        *counts.entry(uid).or_insert(0) += 1;
    }
    counts
}

/// Acknowledged events missing from the database.
fn lost(outcomes: &[Outcome], stored: &HashMap<u64, u32>) -> Vec<u64> {
    outcomes
        .iter()
        .filter(|outcome| outcome.status == Some(200) && !stored.contains_key(&outcome.uid))
        .map(|outcome| outcome.uid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    let mut ingest = spawn_ingest(&db.url, &[]);
    ingest.wait_healthy().await;
    let base = ingest.base_url();

    let load = Load::start(&base, 32, 1);
    load.wait_for_acked(2_000).await;
    ingest.kill(); // SIGKILL: no drain, no flush.
    let outcomes = load.finish().await;

    let stored = stored_uids(&db.url).await;
    let acked = outcomes.iter().filter(|o| o.status == Some(200)).count();
    let lost = lost(&outcomes, &stored);
    let unacked_stored = stored.len() - acked;
    println!(
        "kill -9: {acked} events acknowledged, {} stored, {} lost, {unacked_stored} stored without an acknowledgement (in flight at the kill)",
        stored.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged but lost: {:?}",
        &lost[..lost.len().min(20)]
    );
    assert!(stored.values().all(|&count| count == 1), "no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_and_stores_everything_in_flight() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    // One writer whose batch lingers for 5 s: requests are still waiting when the signal
    // arrives.
    let mut ingest = spawn_ingest(
        &db.url,
        &[
            ("THREESIGMA__INGEST__LINGER", "5s"),
            ("THREESIGMA__INGEST__WRITERS", "1"),
        ],
    );
    let client = authorized().build().unwrap();
    ingest.wait_healthy().await;
    let base = ingest.base_url();

    let requests: Vec<_> = (0..40)
        .map(|uid| {
            let client = client.clone();
            let url = format!("{base}/api/v1/logs");
            tokio::spawn(async move {
                let event = json!({"service": "load", "message": "m", "attributes": {"uid": uid.to_string()}});
                client.post(url).json(&event).send().await.map(|r| r.status().as_u16()).ok()
            })
        })
        .collect();
    let queued = "threesigma_ingest_queue_events 40\n";
    for _ in 0..200 {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(queued) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let signalled = Instant::now();
    signal(ingest.id(), "TERM");
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    let mut child = ingest.into_child();
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let took = signalled.elapsed();
    let stored = stored_uids(&db.url).await;
    println!(
        "SIGTERM: {} of 40 in-flight requests answered 200, {} events stored, exit {exit} after {took:?}",
        statuses.iter().filter(|s| **s == Some(200)).count(),
        stored.len()
    );
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    assert_eq!(stored.len(), 40);
    assert!(exit.success());
    assert!(
        took < Duration::from_secs(10),
        "exit within 10 s, took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_gives_only_503s_and_recovers() {
    let _serial = SERIAL.lock().await;
    let dir =
        std::env::temp_dir().join(format!("threesigma-reliability-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pg_port = free_port();
    let cluster = PrivateCluster::start(&dir, pg_port).unwrap();
    let admin = format!("postgres://postgres@127.0.0.1:{pg_port}/postgres");
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE DATABASE reliability")
        .await
        .unwrap();
    drop(client);
    let database_url = format!("postgres://postgres@127.0.0.1:{pg_port}/reliability");
    store::migrate::run_pending(&database_url).await.unwrap();

    let mut ingest = spawn_ingest(
        &database_url,
        &[
            ("THREESIGMA__INGEST__REQUEST_TIMEOUT", "2s"),
            ("THREESIGMA__DATABASE__CONNECT_TIMEOUT", "1s"),
        ],
    );
    let http = reqwest::Client::new();
    ingest.wait_healthy().await;
    let base = ingest.base_url();

    let load = Load::start(&base, 16, 1);
    load.wait_for_acked(500).await;
    cluster.stop().unwrap();
    let down = Instant::now();
    // The load's clients may all be waiting on batches in doubt (sent when PostgreSQL went
    // away) and send nothing new during the outage: probes are requests that certainly start
    // while it is down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probes: Vec<_> = (0..4)
        .map(|i| tokio::spawn(probe(base.clone(), PROBE_UIDS + i)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready_during_outage = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tokio::time::sleep(Duration::from_secs(2)).await;
    PrivateCluster::start(&dir, pg_port).unwrap();
    let up = Instant::now();
    let acked_before = load.acked();
    for _ in 0..200 {
        if load.acked() > acked_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut outcomes = load.finish().await;
    let mut probed = Vec::new();
    for probe in probes {
        probed.push(probe.await.unwrap());
    }
    outcomes.extend(probed.iter().cloned());
    ingest.kill();

    let stored = stored_uids(&database_url).await;
    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let recovered_after = outcomes
        .iter()
        .filter(|o| o.status == Some(200) && o.finished > up)
        .map(|o| o.finished - up)
        .min()
        .expect("a request succeeded after PostgreSQL returned");
    let count = |status: Option<u16>| outcomes.iter().filter(|o| o.status == status).count();
    let started_during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.started > down && o.started < up)
        .collect();
    let during_503 = started_during
        .iter()
        .filter(|o| o.status == Some(503))
        .count();
    let during_200 = started_during
        .iter()
        .filter(|o| o.status == Some(200))
        .count();
    let lost = lost(&outcomes, &stored);
    let duplicates = stored.values().filter(|&&count| count > 1).count();
    let stored_after_503: usize = outcomes
        .iter()
        .filter(|o| o.status == Some(503) && stored.contains_key(&o.uid))
        .count();
    println!(
        "PostgreSQL restart: outage {:?}; {} answered 200, {} answered 503, {} other; of {} requests sent during the outage {during_503} got 503 (after the 2 s request timeout) and {during_200} got 200 (committed once PostgreSQL was back); /readyz during the outage: {ready_during_outage}; first 200 {recovered_after:?} after PostgreSQL was back; {} acknowledged events lost; {duplicates} duplicates; {stored_after_503} events answered 503 but stored",
        up - down,
        count(Some(200)),
        count(Some(503)),
        outcomes.len() - count(Some(200)) - count(Some(503)),
        started_during.len(),
        lost.len()
    );
    println!(
        "probes sent 0.5 s into the outage: {:?}",
        probed
            .iter()
            .map(|o| (o.status, o.finished - o.started))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        outcomes.len(),
        count(Some(200)) + count(Some(503)),
        "only 200 and 503"
    );
    assert!(
        probed
            .iter()
            .all(|o| o.status == Some(503) && !stored.contains_key(&o.uid)),
        "requests sent while PostgreSQL was down are told 503 and not stored: {probed:?}"
    );
    assert_eq!(ready_during_outage, 503);
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert_eq!(duplicates, 0);
    assert!(
        recovered_after <= Duration::from_secs(5),
        "recovery took {recovered_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_quickly_with_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let db = TestDatabase::create().await;
    // A deliberately small queue: 64 clients sending 1,000 events each overload it many times.
    let mut ingest = spawn_ingest(
        &db.url,
        &[
            ("THREESIGMA__INGEST__QUEUE_MAX_EVENTS", "4000"),
            ("THREESIGMA__INGEST__ENQUEUE_TIMEOUT", "200ms"),
            ("THREESIGMA__INGEST__MAX_INFLIGHT_BYTES", "8388608"),
        ],
    );
    ingest.wait_healthy().await;
    let base = ingest.base_url();

    let load = Load::start(&base, 64, 1_000);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let outcomes = load.finish().await;
    let peak_kib = peak_rss_kib(ingest.id());
    let alive = reqwest::get(format!("{base}/healthz"))
        .await
        .map(|r| r.status().as_u16())
        .ok();
    ingest.kill();

    let stored = stored_uids(&db.url).await;
    let requests: Vec<&Outcome> = outcomes.iter().step_by(1_000).collect();
    let refused: Vec<Duration> = requests
        .iter()
        .filter(|o| o.status == Some(503))
        .map(|o| o.finished - o.started)
        .collect();
    let accepted = requests.iter().filter(|o| o.status == Some(200)).count();
    let slowest_refusal = refused.iter().max().copied().unwrap_or_default();
    println!(
        "overload: {} requests of 1,000 events, {accepted} answered 200, {} answered 503 (slowest 503 after {slowest_refusal:?}); peak RSS {} MiB; healthz after: {alive:?}",
        requests.len(),
        refused.len(),
        peak_kib / 1024
    );
    assert!(!refused.is_empty(), "the queue was overloaded");
    assert_eq!(requests.len(), accepted + refused.len(), "only 200 and 503");
    assert!(lost(&outcomes, &stored).is_empty());
    assert_eq!(alive, Some(200));
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
}

/// Its log output gone (piped to `head`, a logger restarted), the service must keep serving
/// and still stop on SIGTERM. A failed log write was reported on stderr, and on a closed
/// stderr that report panicked the logging task: the main task at start-up (the service
/// died), or the signal task, which logged before it cancelled (the service served on,
/// deaf to SIGTERM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_service_whose_log_output_is_gone() {
    let db = TestDatabase::create().await;
    let mut service = ServiceCommand::new(env!("CARGO_BIN_EXE_threesigma-ingest"))
        .env("DATABASE_URL", &db.url)
        .env("JWT_SECRET", auth::testing::SECRET)
        .env("THREESIGMA__SERVER__WORKERS", "1")
        .env("RUST_LOG", "info")
        .closed_output()
        .spawn();
    service.wait_healthy().await;
    signal(service.id(), "TERM");
    let mut child = service.into_child();
    let stopped = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    })
    .await
    .unwrap();
    assert!(stopped.is_some(), "still running 10 s after SIGTERM");
}
