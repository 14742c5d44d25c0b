use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/shippers")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Fixtures were captured on 2026-11-25: accept old event times for them.
fn accept_old_events(settings: &mut ingest::Settings) {
    settings.ingest.max_event_age = Duration::from_secs(20 * 365 * 86_400);
}

#[tokio::test]
async fn one_object_an_array_and_ndjson_are_stored() {
    let app = spawn_app().await;
    let response = app
        .post_logs(&json!({"service": "a", "level": "error", "message": "one"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "rejected": 0, "errors": []})
    );

    let response = app
        .post_logs(
            &json!([{"service": "a", "message": "two"}, {"service": "b", "message": "three"}]),
        )
        .await;
    assert_eq!(response.status(), 200);

    let ndjson = "{\"service\":\"a\",\"msg\":\"four\"}\n{\"service\":\"a\",\"msg\":\"five\"}\n";
    let response = app
        .post("/api/v1/logs", "application/x-ndjson", ndjson)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 2);

    assert_eq!(
        app.stored_messages().await,
        ["five", "four", "one", "three", "two"]
    );
}

#[tokio::test]
async fn the_original_ingest_endpoint_and_body_work() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/ingest",
            "application/json",
            json!({"service_id": "payments", "timestamp": chrono::Utc::now().to_rfc3339(),
                   "level": "ERROR", "message": "card declined", "metadata": {"order": 7}})
            .to_string(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.stored_messages().await, ["card declined"]);
}

#[tokio::test]
async fn bad_events_are_rejected_and_good_ones_kept() {
    let app = spawn_app().await;
    let response = app
        .post_logs(&json!([
            {"service": "a", "message": "kept"},
            {"message": "no service"},
            {"service": "a", "message": "bad level", "level": "loud"},
            {"service": "a", "message": "kept too", "level": 3},
            {"service": "a b", "message": "bad service"},
        ]))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 3);
    let indexes: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 4]);
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("missing service")
    );
    assert_eq!(app.stored_messages().await, ["kept", "kept too"]);
}

#[tokio::test]
async fn unusable_bodies_are_400_with_a_reason() {
    let app = spawn_app().await;
    let response = app
        .post("/api/v1/logs", "application/x-ndjson", "{nope\n{still nope")
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().starts_with("line 1:"),
        "{body}"
    );

    let response = app.post("/api/v1/logs", "application/json", "[{").await;
    assert_eq!(response.status(), 400);
    let response = app.post_logs(&json!({"message": "no service"})).await;
    assert_eq!(response.status(), 400);

    // Every event invalid: nothing in the body is usable, so a 400 says why (it was a 200
    // with `accepted: 0`).
    let response = app
        .post_logs(&json!([{"message": "no service"}, {"service": "a"}]))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no valid event in the body (2 rejected)"),
        "{body}"
    );
    assert!(app.stored_messages().await.is_empty());
}

#[tokio::test]
async fn ndjson_line_errors_keep_the_other_lines() {
    let app = spawn_app().await;
    let body = "{\"service\":\"a\",\"message\":\"first\"}\n{broken\n{\"service\":\"a\",\"message\":\"third\"}\n";
    let response = app.post("/api/v1/logs", "application/x-ndjson", body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("line 2:")
    );
    assert_eq!(body["errors"][0]["line"], 2);
    assert_eq!(app.stored_messages().await, ["first", "third"]);

    // A line that is JSON but not a valid event names its line too (blank lines count).
    let body = "{\"service\":\"a\",\"message\":\"fourth\"}\n\n{\"message\":\"no service\"}\n";
    let response = app.post("/api/v1/logs", "application/x-ndjson", body).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (&body["errors"][0]["index"], &body["errors"][0]["line"]),
        (&json!(1), &json!(3)),
        "{body}"
    );
}

#[tokio::test]
async fn syslog_ng_bodies_are_understood() {
    let app = spawn_app_with(accept_old_events).await;
    let response = app
        .post(
            "/api/v1/logs",
            "application/json",
            fixture("syslog-ng-http-json-array.json"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rejected"], 0, "{body}");
    let array_accepted = body["accepted"].as_u64().unwrap();
    assert!(array_accepted > 0);

    let response = app
        .post(
            "/api/v1/logs",
            "application/x-ndjson",
            fixture("syslog-ng-http-ndjson.ndjson"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rejected"], 0, "{body}");

    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use store::schema::logs;
    let mut conn = app.connection().await;
    let rows: Vec<(String, i16, serde_json::Value)> = logs::table
        .filter(logs::service.eq("checkout-nd"))
        .select((logs::message, logs::level, logs::attributes))
        .load(&mut conn)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    let (message, level, attributes) = &rows[0];
    assert!(message.starts_with("order "), "{message}");
    assert_eq!(*level, domain::Level::Error.as_i16());
    assert_eq!(attributes["PROGRAM"], "checkout");
    assert_eq!(attributes["HOST"], "vm");
}

#[tokio::test]
async fn gzip_and_zstd_bodies_are_decoded() {
    let app = spawn_app().await;
    let body = json!([{"service": "a", "message": "zipped"}]).to_string();
    let response = app
        .client
        .post(format!("{}/api/v1/logs", app.address))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let body = json!([{"service": "a", "message": "zstd"}]).to_string();
    let compressed = ruzstd::encoding::compress_to_vec(
        body.as_bytes(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let response = app
        .client
        .post(format!("{}/api/v1/logs", app.address))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "zstd")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.stored_messages().await, ["zipped", "zstd"]);
}

#[tokio::test]
async fn size_limits_apply_after_decompression() {
    let app = spawn_app_with(|settings| settings.ingest.max_body_bytes = 64 * 1024).await;
    // 1 MiB of whitespace gzips to about a kilobyte: small on the wire, too big unpacked.
    let mut body = json!([{"service": "a", "message": "bomb"}])
        .to_string()
        .into_bytes();
    body.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    let response = app
        .client
        .post(format!("{}/api/v1/logs", app.address))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );

    let response = app
        .post("/api/v1/logs", "application/json", vec![b' '; 100 * 1024])
        .await;
    assert_eq!(response.status(), 413);
    assert!(app.stored_messages().await.is_empty());
}

#[tokio::test]
async fn unsupported_types_and_encodings_are_415() {
    let app = spawn_app().await;
    for content_type in ["application/xml", "text/plain", "application/octet-stream"] {
        let response = app
            .post(
                "/api/v1/logs",
                content_type,
                r#"{"service":"a","message":"m"}"#,
            )
            .await;
        assert_eq!(response.status(), 415, "{content_type}");
    }
    assert!(app.stored_messages().await.is_empty());
    let response = app
        .client
        .post(format!("{}/api/v1/logs", app.address))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(
        response.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("br")
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_unknown_routes() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.post_logs(&json!({"service": "a", "message": "m"}))
        .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("threesigma_ingest_events_committed_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("threesigma_http_requests_total"),
        "{metrics}"
    );
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
}

/// Waits (bounded) until the service reports `events` queued.
async fn wait_until_queued(app: &crate::helpers::TestApp, events: usize) {
    let expected = format!("threesigma_ingest_queue_events {events}\n");
    for _ in 0..200 {
        if app
            .get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains(&expected)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never saw {events} events queued");
}

#[tokio::test]
async fn buffered_mode_answers_202_and_stopping_flushes() {
    let mut app = spawn_app_with(|settings| {
        settings.ingest.ack = ingest::settings::AckMode::Buffered;
        // One writer lingers for the whole linger (no other writer could take the batch).
        settings.ingest.writers = 1;
        settings.ingest.linger = Duration::from_secs(30);
    })
    .await;
    let response = app
        .post_logs(&json!({"service": "a", "message": "buffered"}))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 1);
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.stored_messages().await, ["buffered"]);
}

#[tokio::test]
async fn stopping_answers_and_stores_everything_in_flight() {
    // A batch that would linger for 30 s (one writer lingers for the whole linger):
    // stopping must not wait for it.
    let mut app = spawn_app_with(|settings| {
        settings.ingest.writers = 1;
        settings.ingest.linger = Duration::from_secs(30);
    })
    .await;
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/logs", app.address);
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"service": "a", "message": format!("m{i:02}")}))
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
                    .map_err(|error| error.to_string())
            })
        })
        .collect();
    wait_until_queued(&app, 20).await;
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .unwrap()
        .unwrap();
    for request in requests {
        assert_eq!(request.await.unwrap(), Ok(200));
    }
    assert_eq!(app.stored_messages().await.len(), 20);
}

#[tokio::test]
async fn a_lone_request_is_not_held_for_the_linger() {
    // With a writer free, lingering would only add latency: the batch closes at once.
    let app = spawn_app_with(|settings| settings.ingest.linger = Duration::from_secs(60)).await;
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        app.post_logs(&json!({"service": "a", "message": "prompt"})),
    )
    .await
    .expect("answered well before the 60 s linger");
    assert_eq!(response.status(), 200);
}

/// Events stamped more than 10 minutes before they arrive are stored like any other, and
/// counted: a running detector never judges them (docs/ARCHITECTURE.md, "Late data").
#[tokio::test]
async fn delayed_events_are_counted() {
    let app = spawn_app().await;
    let old = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339();
    let recent = (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339();
    let response = app
        .post_logs(&json!([
            {"service": "a", "message": "old", "ts": old},
            {"service": "a", "message": "recent", "ts": recent},
        ]))
        .await;
    assert_eq!(response.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("threesigma_ingest_events_delayed_total 1\n"),
        "{metrics}"
    );
}
