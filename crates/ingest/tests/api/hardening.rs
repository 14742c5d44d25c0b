//! Attacks from the security review (issue 10), replayed against the real server.

use reqwest::Method;

use crate::helpers::spawn_app;

/// `/healthz` and `/metrics` answer anyone. Made-up request methods used to become metric
/// label values, each a series kept forever: 3,000 of them grew /metrics from 6 KB to 6 MB,
/// and 100 KB methods took RSS to 600 MB. Every label is now from a fixed set.
#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let attack = |round: usize| {
        let client = client.clone();
        let address = app.address.clone();
        async move {
            for i in 0..150 {
                let method = if i % 50 == 0 {
                    format!("{round}{}", "M".repeat(10_000))
                } else {
                    format!("BOGUS{round}X{i}")
                };
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                for path in ["/healthz", "/metrics", "/no/such/path"] {
                    client
                        .request(method.clone(), format!("{address}{path}"))
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    };
    attack(1).await;
    app.get("/metrics").await;
    let before = app
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .lines()
        .count();
    attack(2).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("BOGUS"),
        "a client's method became a label"
    );
    assert!(
        metrics.contains(r#"method="other""#),
        "made-up methods are counted as other: {metrics}"
    );
    // A second round of new methods adds no series (only counts change).
    assert_eq!(metrics.lines().count(), before, "{metrics}");
    assert!(metrics.len() < 32_000, "{} bytes", metrics.len());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A 1.9 MB gzip of NDJSON always got 503 on an idle ingest: the request held room for
/// its compressed bytes, then asked for more than the rest of the budget. Shippers send
/// multi-MB gzip batches and would retry it forever.
#[tokio::test]
async fn a_large_compressed_batch_is_accepted_on_an_idle_server() {
    let app = spawn_app().await;
    // Poorly compressible messages (hex of a pseudo-random walk), ~100 bytes an event.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = String::new();
    while body.len() < 6 * 1024 * 1024 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let message = format!(
            "{state:016x}{:016x}{:016x}",
            state.rotate_left(21),
            state ^ 0x5555
        );
        body.push_str(&format!(r#"{{"service":"batch","message":"{message}"}}"#));
        body.push('\n');
    }
    let events = body.lines().count();
    let compressed = gzip(body.as_bytes());
    assert!(compressed.len() > 1_700_000, "{}", compressed.len());
    let response = app
        .client
        .post(format!("{}/api/v1/logs", app.address))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], events);
}

/// 16 MiB of `[1,1,…]` gzipped to 16 KB peaked at 588 MB: every one of its 8 million
/// elements kept a rejection string. Elements per body are capped and rejections counted.
#[tokio::test]
async fn element_bombs_are_refused_whole() {
    let app = spawn_app().await;
    let mut array = Vec::with_capacity(16 * 1024 * 1024);
    array.push(b'[');
    while array.len() < 16 * 1024 * 1024 - 3 {
        array.extend_from_slice(b"1,");
    }
    array.extend_from_slice(b"1]");
    let lines = b"x\n".repeat(7 * 1024 * 1024);
    for (content_type, body) in [("application/json", array), ("application/x-ndjson", lines)] {
        let response = app
            .client
            .post(format!("{}/api/v1/logs", app.address))
            .header("Content-Type", content_type)
            .header("Content-Encoding", "gzip")
            .body(gzip(&body))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 413, "{content_type}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("more than 100000 events"),
            "{answer}"
        );
    }
    // Many bad events under the cap: all counted, the first 100 listed.
    let body: String = (0..50_000).map(|_| "7\n").collect();
    let body = format!("{body}{{\"service\":\"a\",\"message\":\"m\"}}\n");
    let response = app.post("/api/v1/logs", "application/x-ndjson", body).await;
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(50_000))
    );
    assert_eq!(answer["errors"].as_array().unwrap().len(), 100);
}

/// Ingest takes no query parameters: one is refused by name, never silently ignored.
#[tokio::test]
async fn query_parameters_are_refused_by_name() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/logs?foo=1",
            "application/json",
            r#"{"service":"a","message":"m"}"#,
        )
        .await;
    assert_eq!(response.status(), 400);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(
        answer["message"].as_str().unwrap().contains("foo"),
        "{answer}"
    );
    assert!(app.stored_messages().await.is_empty());
}

/// A client that sends headers and 12 bytes of a 1,000-byte body, then nothing, held its
/// connection for as long as it liked (≥ 75 s seen); 600 of them starved the server of
/// connections. A body that stalls now gets 408 and a closed connection.
#[tokio::test]
async fn a_stalled_body_gets_408_and_its_connection_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.body_idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let token = crate::helpers::ingest_token();
    stream
        .write_all(
            format!(
                "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"service\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    // Bounded: the whole answer and the close must come well within 10 s.
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the connection was not closed")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(app.stored_messages().await.is_empty());
}
