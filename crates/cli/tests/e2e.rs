//! The whole pipeline in one process against a fresh database: shipper traffic into
//! ingest, the detector's evaluation, and the incident read back through the query API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth::Scope;
use chrono::Utc;
use cli::stack::{Stack, StackOptions};
use cli::traffic;
use serde_json::Value;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_becomes_exactly_one_incident_readable_through_the_api() {
    runtime::telemetry::init_for_tests();
    let db = TestDatabase::create().await;
    let options = StackOptions {
        database_url: db.url.clone(),
        config: None,
        ingest_bind: "127.0.0.1:0".to_owned(),
        query_bind: "127.0.0.1:0".to_owned(),
        detector_bind: "127.0.0.1:0".to_owned(),
        // The loop stays out of the way; the test drives evaluations itself.
        detector_interval: Some(Duration::from_secs(3600)),
        jwt_secret: Some(auth::testing::SECRET.to_owned()),
    };
    let stack = Stack::build(&options).await.unwrap();
    let ingest = format!("http://127.0.0.1:{}", stack.ingest_port());
    let query = format!("http://127.0.0.1:{}", stack.query_port());
    let detector = stack.detector();
    let detector_port = stack.detector_port();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(stack.run_until(shutdown.clone()));

    let shipper_token = auth::testing::token("e2e-shipper", &[Scope::Ingest], None);
    let reader = auth::testing::token("e2e-reader", &[Scope::Read], None);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {reader}")).unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let shipper = traffic::Shipper::new(reqwest::Client::new(), &ingest, &shipper_token);
    let profiles = traffic::demo_profiles();
    // The detector's loop evaluates once as it starts. Had that first cycle run during the
    // backfill, it would have judged minutes still half sent, and a running detector keeps
    // minutes as judged (a 28-minute baseline instead of 30, on a loaded machine): wait
    // for it to finish on the empty database first. Then backfill, burst and evaluation
    // must fall in one wall-clock minute, or the window slides between them.
    let metrics_url = format!("http://127.0.0.1:{detector_port}/metrics");
    let mut first_cycle_done = false;
    for _ in 0..200 {
        let text = reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        first_cycle_done = text.lines().any(|line| {
            line.strip_prefix("threesigma_detector_last_success_timestamp_seconds ")
                .and_then(|value| value.trim().parse::<f64>().ok())
                .is_some_and(|value| value > 0.0)
        });
        if first_cycle_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        first_cycle_done,
        "the detector's first cycle did not finish"
    );
    let into_minute = Utc::now().timestamp() % 60;
    if into_minute > 40 {
        let wait = u64::try_from(61 - into_minute).unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    traffic::backfill(&shipper, &profiles, Utc::now(), 30)
        .await
        .unwrap();
    traffic::burst(&shipper, "checkout", 80).await.unwrap();

    // Every event got a 200, so it is committed: one evaluation must see the burst.
    let report = detector.tick(Utc::now()).await.unwrap();
    assert_eq!(report.opened, 1, "{report:?}");

    // Read it back the way an operator would, within a bounded wait.
    let page: Value = tokio::time::timeout(Duration::from_secs(10), async {
        client
            .get(format!("{query}/api/v1/incidents?status=open"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
    .await
    .unwrap();
    let open = page["data"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{page}");
    assert_eq!(open[0]["service"], "checkout");
    assert_eq!(open[0]["current_count"], 80);
    assert!(page["next_cursor"].is_null());
    for quiet in ["search", "billing"] {
        let page: Value = client
            .get(format!("{query}/api/v1/incidents?service={quiet}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["data"], serde_json::json!([]), "{quiet}: {page}");
    }

    let id = open[0]["id"].as_i64().unwrap();
    let detail: Value = client
        .get(format!("{query}/api/v1/incidents/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["baseline"]["minutes"], 30);
    assert_eq!(detail["timeline"][0]["kind"], "opened");

    // The incident's logs: the 80 burst errors, two pages of 50.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{query}/api/v1/incidents/{id}/logs?limit=50");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(
            data.iter()
                .all(|log| log["service"] == "checkout" && log["level"] == "error")
        );
        seen += data.len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 80);

    shutdown.cancel();
    running.await.unwrap().unwrap();
}
