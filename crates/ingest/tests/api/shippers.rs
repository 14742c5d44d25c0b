//! The shippers' own protocols over HTTP: OTLP/HTTP logs, Loki push, Elasticsearch bulk,
//! with bodies captured from real clients where we have them, their answers and error
//! shapes as the clients expect, and credentials as the clients send them.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{TestApp, ingest_token, spawn_app_with};

/// A body captured from a real shipper, or `None` (the test then skips) when the shared
/// fixtures are not beside the clone.
fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/shippers")
        .join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!(
                "skipped: {} is not here (fixtures live beside the clone on CI)",
                path.display()
            );
            None
        }
    }
}

/// Captured bodies carry the time they were captured: accept events of any age.
async fn app() -> TestApp {
    spawn_app_with(|settings| {
        settings.ingest.max_event_age = Duration::from_secs(20 * 365 * 86_400);
    })
    .await
}

fn event(service: &str, level: &str, message: &str) -> (String, String, String) {
    (service.to_owned(), level.to_owned(), message.to_owned())
}

#[tokio::test]
async fn otlp_protobuf_from_the_python_sdk_lands_with_service_level_and_message() {
    let (Some(plain), Some(gzipped)) = (
        fixture("otel-python-1.45.2-otlp.pb"),
        fixture("otel-python-1.45.2-otlp.pb.gz"),
    ) else {
        return;
    };
    let app = app().await;
    let response = app.post("/v1/logs", "application/x-protobuf", plain).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-protobuf"
    );
    let answer = ExportLogsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.partial_success, None, "everything accepted");
    let stored = app.stored_events().await;
    assert!(
        stored.contains(&event(
            "checkout",
            "error",
            "payment failed: timeout talking to db"
        )),
        "{stored:?}"
    );
    assert!(
        stored
            .iter()
            .any(|(s, l, _)| s == "checkout" && l == "info"),
        "{stored:?}"
    );

    let response = app
        .client
        .post(format!("{}/v1/logs", app.address))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "gzip")
        .body(gzipped)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.stored_events().await.len(), stored.len() * 2);
}

#[tokio::test]
async fn otlp_json_partial_success_and_error_shapes() {
    let app = app().await;
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": now.to_string(), "severityNumber": 17, "body": {"stringValue": "kept"}},
            {"timeUnixNano": "1", "severityNumber": 17, "body": {"stringValue": "too old"}}
        ]}]
    }]});
    let strict = spawn_app_with(|_| {}).await;
    let response = strict
        .post("/v1/logs", "application/json", body.to_string())
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"],
        json!(1),
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("record 1")
    );
    assert_eq!(strict.stored_messages().await, vec!["kept".to_owned()]);

    // Undecodable: 400 with a google.rpc.Status in the request's encoding.
    let response = app
        .post("/v1/logs", "application/x-protobuf", vec![0x0a, 0xff])
        .await;
    assert_eq!(response.status(), 400);
    let status = response.bytes().await.unwrap();
    assert!(
        String::from_utf8_lossy(&status).contains("OTLP protobuf"),
        "{status:?}"
    );
    let response = app
        .post("/v1/logs", "application/json", "{\"resourceLogs\": 1}")
        .await;
    assert_eq!(response.status(), 400);
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    let response = app.post("/v1/logs", "text/plain", "x").await;
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn the_otlp_port_serves_exporters_default_url() {
    runtime::telemetry::init_for_tests();
    let db = store::testing::TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&db);
    settings.ingest.otlp_bind = "127.0.0.1:0".to_owned();
    let service = ingest::Application::build(settings).await.unwrap();
    let port = service.otlp_port().expect("an OTLP port");
    assert_ne!(port, service.port());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(service.run_until(shutdown.clone()));
    let now = Utc::now().timestamp_nanos_opt().unwrap();
    let body = json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "edge"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": now.to_string(), "body": {"stringValue": "via 4318"}}]}]}]});
    let response = crate::helpers::client_with(&ingest_token())
        .post(format!("http://127.0.0.1:{port}/v1/logs"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn loki_push_from_python_logging_loki_with_basic_auth() {
    let Some(body) = fixture("python-logging-loki-0.3.1-push.json") else {
        return;
    };
    let app = app().await;
    // python-logging-loki can only send basic auth: the token is the password.
    let basic = STANDARD.encode(format!("anyone:{}", ingest_token()));
    let response = reqwest::Client::new()
        .post(format!("{}/loki/api/v1/push", app.address))
        .header("Authorization", format!("Basic {basic}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{:?}", response.text().await);
    let stored = app.stored_events().await;
    assert_eq!(
        stored,
        vec![event(
            "checkout",
            "error",
            "payment failed: timeout talking to db"
        )]
    );
}

#[tokio::test]
async fn loki_protobuf_snappy_and_loki_style_errors() {
    let app = app().await;
    // PushRequest{streams: [StreamAdapter{labels, entries: [EntryAdapter{timestamp, line}]}]}
    let now = Utc::now();
    let mut entry = Vec::new();
    let mut timestamp = Vec::new();
    prost::encoding::int64::encode(1, &now.timestamp(), &mut timestamp);
    prost::encoding::bytes::encode(1, &timestamp, &mut entry);
    prost::encoding::string::encode(2, &"level=error msg=\"disk full\"".to_owned(), &mut entry);
    let mut stream = Vec::new();
    prost::encoding::string::encode(1, &"{job=\"node\", host=\"h1\"}".to_owned(), &mut stream);
    prost::encoding::bytes::encode(2, &entry, &mut stream);
    let mut request = Vec::new();
    prost::encoding::bytes::encode(1, &stream, &mut request);
    let body = snap::raw::Encoder::new().compress_vec(&request).unwrap();
    let response = app
        .post("/loki/api/v1/push", "application/x-protobuf", body)
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.stored_events().await,
        vec![event("node", "error", "level=error msg=\"disk full\"")]
    );

    // Some entries bad: the good one is stored, the answer is Loki's 400 text.
    let body = json!({"streams": [
        {"stream": {"app": "web"}, "values": [[Utc::now().timestamp_nanos_opt().unwrap().to_string(), "ok line"]]},
        {"stream": {"env": "prod"}, "values": [["1", "orphan"]]}
    ]});
    let response = app
        .post("/loki/api/v1/push", "application/json", body.to_string())
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("no service label"), "{text}");
    assert!(app.stored_messages().await.contains(&"ok line".to_owned()));
    let response = app
        .post("/loki/api/v1/push", "application/x-protobuf", "garbage")
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("snappy"));
}

#[tokio::test]
async fn elasticsearch_clients_probe_then_bulk_with_an_api_key() {
    let app = app().await;
    // Elasticsearch clients send ApiKey base64(id:key): the token is the key.
    let api_key = STANDARD.encode(format!("filebeat:{}", ingest_token()));
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}{path}", app.address))
            .header("Authorization", format!("ApiKey {api_key}"))
    };
    let root = send(reqwest::Method::GET, "/").send().await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.headers()["x-elastic-product"], "Elasticsearch");
    let version: Value = root.json().await.unwrap();
    assert!(
        version["version"]["number"]
            .as_str()
            .unwrap()
            .starts_with('8')
    );
    assert_eq!(
        send(reqwest::Method::HEAD, "/")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send(reqwest::Method::GET, "/_license")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let now = Utc::now().to_rfc3339();
    let body = format!(
        "{{\"create\":{{\"_index\":\"logs-app\"}}}}\n\
         {{\"@timestamp\":\"{now}\",\"message\":\"es error\",\"log.level\":\"error\",\"service.name\":\"billing\"}}\n\
         {{\"delete\":{{\"_id\":\"1\"}}}}\n\
         {{\"index\":{{}}}}\n\
         {{\"@timestamp\":\"{now}\",\"message\":\"from the index name\"}}\n"
    );
    let response = send(
        reqwest::Method::POST,
        "/filebeat-8/_bulk?filter_path=errors,items.*.status",
    )
    .header("Content-Type", "application/x-ndjson")
    .body(body)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["create"]["status"], 201);
    assert_eq!(items[0]["create"]["_index"], "logs-app");
    assert_eq!(items[1]["delete"]["status"], 400);
    assert_eq!(items[2]["index"]["_index"], "filebeat-8");
    let stored = app.stored_events().await;
    assert_eq!(
        stored,
        vec![
            event("billing", "error", "es error"),
            event("filebeat-8", "info", "from the index name"),
        ]
    );

    // A malformed action line refuses the request in Elasticsearch's error shape.
    let response = send(reqwest::Method::POST, "/_bulk")
        .header("Content-Type", "application/x-ndjson")
        .body("not an action\n{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["status"], 400);
    assert!(
        error["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{error}"
    );
}

#[tokio::test]
async fn every_credential_scheme_carries_the_same_token_rules() {
    let app = app().await;
    let token = ingest_token();
    let body = json!({"service": "auth", "message": "m"}).to_string();
    let post = |authorization: String| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/logs", app.address))
            .header("Authorization", authorization)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
    };
    for accepted in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("Basic {}", STANDARD.encode(format!("user:{token}"))),
        format!("Basic {}", STANDARD.encode(format!("{token}:"))),
        format!("ApiKey {token}"),
        format!("ApiKey {}", STANDARD.encode(format!("id:{token}"))),
    ] {
        assert_eq!(
            post(accepted.clone()).await.unwrap().status(),
            200,
            "{accepted}"
        );
    }
    let read_only = auth::testing::token("reader", &[auth::Scope::Read], None);
    for (refused, status) in [
        (
            format!("Basic {}", STANDARD.encode("user:not-a-token")),
            401,
        ),
        (format!("Basic {}", STANDARD.encode("no colon")), 401),
        ("Basic %%%".to_owned(), 401),
        (format!("Digest {token}"), 401),
        (
            format!("ApiKey {}", STANDARD.encode(format!("id:{read_only}"))),
            403,
        ),
    ] {
        assert_eq!(
            post(refused.clone()).await.unwrap().status(),
            status,
            "{refused}"
        );
    }
}

/// From the operator review: bad records beside good ones, shared data copied into every
/// record, oversized records, refusals before the pipeline, query strings.
#[tokio::test]
async fn hostile_and_odd_bodies_are_refused_in_the_protocols_shapes() {
    let app = app().await;
    let now = Utc::now().timestamp_nanos_opt().unwrap().to_string();

    // One OTLP JSON record that does not fit the mapping (a bad trace id) is rejected
    // alone; the good one is stored. Query strings are ignored.
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mixed"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": now, "body": {"stringValue": "good"}},
            {"timeUnixNano": now, "body": {"stringValue": "bad id"}, "traceId": "zz"}
        ]}]
    }]});
    let response = app
        .post("/v1/logs?tenant=x", "application/json", body.to_string())
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"],
        json!(1),
        "{answer}"
    );
    assert_eq!(app.stored_messages().await, vec!["good".to_owned()]);

    // A 60 KB label shared by 5,000 empty entries would decode into 300 MB: 413.
    let label = "x".repeat(60_000);
    let values: Vec<Value> = (0..5_000).map(|_| json!([now, ""])).collect();
    let body = json!({"streams": [{"stream": {"app": "bomb", "big": label}, "values": values}]});
    let response = app
        .post("/loki/api/v1/push", "application/json", body.to_string())
        .await;
    assert_eq!(response.status(), 413);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("decodes into more than")
    );

    // An OTLP record of 300,000 empty attributes (2 bytes each on the wire) is rejected
    // without being decoded; the record after it is stored.
    let mut huge = Vec::new();
    for _ in 0..300_000 {
        huge.extend_from_slice(&[0x32, 0x00]);
    }
    let mut small = Vec::new();
    prost::encoding::fixed64::encode(
        1,
        &u64::try_from(Utc::now().timestamp_nanos_opt().unwrap()).unwrap(),
        &mut small,
    );
    let mut any = Vec::new();
    prost::encoding::string::encode(1, &"after the big one".to_owned(), &mut any);
    prost::encoding::bytes::encode(5, &any, &mut small);
    let mut scope = Vec::new();
    prost::encoding::bytes::encode(2, &huge, &mut scope);
    prost::encoding::bytes::encode(2, &small, &mut scope);
    let mut kv = Vec::new();
    prost::encoding::string::encode(1, &"service.name".to_owned(), &mut kv);
    let mut value = Vec::new();
    prost::encoding::string::encode(1, &"wide".to_owned(), &mut value);
    prost::encoding::bytes::encode(2, &value, &mut kv);
    let mut resource = Vec::new();
    prost::encoding::bytes::encode(1, &kv, &mut resource);
    let mut resource_logs = Vec::new();
    prost::encoding::bytes::encode(1, &resource, &mut resource_logs);
    prost::encoding::bytes::encode(2, &scope, &mut resource_logs);
    let mut request = Vec::new();
    prost::encoding::bytes::encode(1, &resource_logs, &mut request);
    let response = app
        .post("/v1/logs", "application/x-protobuf", request)
        .await;
    assert_eq!(response.status(), 200);
    let answer = ExportLogsServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("one record rejected");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("larger than any event"),
        "{}",
        partial.error_message
    );
    assert!(
        app.stored_messages()
            .await
            .contains(&"after the big one".to_owned())
    );

    // Refusals before decoding are in the protocol's shape too.
    let anonymous = reqwest::Client::new();
    let loki = anonymous
        .post(format!("{}/loki/api/v1/push", app.address))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(loki.status(), 401);
    assert!(
        loki.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let bulk = anonymous
        .post(format!("{}/_bulk", app.address))
        .header("Content-Type", "application/x-ndjson")
        .body("{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bulk.status(), 401);
    assert_eq!(bulk.headers()["x-elastic-product"], "Elasticsearch");
    let error: Value = bulk.json().await.unwrap();
    assert_eq!(error["status"], 401, "{error}");
}
