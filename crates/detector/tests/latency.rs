//! The real `threesigma-detector` binary, with a real ingest in front: from a burst being
//! acknowledged by ingest to the incident row, at most one interval and a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::Minute;
use runtime::testing::ServiceCommand;
use serde_json::json;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_secs(2);

async fn post(client: &reqwest::Client, url: &str, lines: Vec<serde_json::Value>) {
    let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let response = client
        .post(url)
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_becomes_an_incident_within_one_interval() {
    let db = TestDatabase::create().await;
    let mut settings = ingest::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.server.workers = 1;
    settings.database.url = db.url.clone().into();
    settings.database.pool_size = 2;
    settings.auth = auth::testing::settings();
    let ingest = ingest::Application::build(settings).await.unwrap();
    let logs = format!("http://127.0.0.1:{}/api/v1/logs", ingest.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(ingest.run_until(shutdown.clone()));

    let token = auth::testing::token("latency-test", &[auth::Scope::Ingest], None);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let now = Minute::containing(Utc::now());
    for back in (1..=30).rev() {
        let minute = now.minus(back);
        let lines = (0..(2 + back % 3))
            .map(|i| json!({"service": "checkout", "level": "error", "message": format!("e{i}"), "ts": minute.start().to_rfc3339()}))
            .chain((0..20).map(|i| json!({"service": "checkout", "message": format!("i{i}"), "ts": minute.start().to_rfc3339()})))
            .collect();
        post(&client, &logs, lines).await;
    }

    let mut detector = ServiceCommand::new(env!("CARGO_BIN_EXE_threesigma-detector"))
        .args(["--interval", "2s"])
        .env("DATABASE_URL", &db.url)
        .spawn();

    // Let the detector settle into its loop before the burst arrives.
    tokio::time::sleep(INTERVAL).await;
    let burst = (0..80)
        .map(|i| json!({"service": "checkout", "level": "error", "message": format!("payment failed {i}")}))
        .collect();
    post(&client, &logs, burst).await;
    let acknowledged = Instant::now();

    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let mut latency = None;
    while acknowledged.elapsed() < Duration::from_secs(30) {
        use store::schema::incidents;
        let count: i64 = incidents::table
            .count()
            .get_result(&mut conn)
            .await
            .unwrap();
        if count > 0 {
            latency = Some(acknowledged.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    detector.kill();
    shutdown.cancel();

    let latency = latency.expect("the burst opened an incident");
    println!("burst acknowledged by ingest -> incident row: {latency:?} (interval {INTERVAL:?})");
    assert!(
        latency <= INTERVAL + Duration::from_secs(5),
        "took {latency:?}"
    );
}
