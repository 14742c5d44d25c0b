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

/// Reads one HTTP/1.1 response (head and a Content-Length body) from a kept-alive stream.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return text;
            }
        }
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("no answer within 10 s")
                .unwrap();
        assert!(read > 0, "closed before a whole answer: {text}");
        bytes.extend_from_slice(&buffer[..read]);
    }
}

/// One address could hold most of the server's connections (stalled bodies are cut only
/// after `body_idle_timeout`, idle connections after the header deadline). Past
/// `server.max_connections_per_client`, a connection is closed as soon as it is accepted
/// (with a best-effort 429), whether it sends anything or not; other addresses are served;
/// room comes back as connections close.
#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.max_connections_per_client = 3;
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let token = crate::helpers::ingest_token();
    let body = r#"{"service":"bound","level":"error","message":"over the bound"}"#;
    let post = format!(
        "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let probe = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    // Three connections, each known to be accepted (it answered and stays open).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(probe.as_bytes()).await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }

    // A fourth that sends nothing, and a fifth that sends a POST: both closed at once
    // (well before the 5 s header deadline), at most with a 429; nothing stored.
    for request in ["", post.as_str()] {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(4),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("a connection over the bound was kept open");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            read.is_err() || answer.is_empty() || answer.starts_with("HTTP/1.1 429"),
            "{answer}"
        );
        if !answer.is_empty() {
            assert!(answer.contains("too_many_connections"), "{answer}");
        }
    }
    assert!(app.stored_messages().await.is_empty());

    // Another address is served, and sees the refusals counted.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let metrics = elsewhere
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = metrics
        .lines()
        .find_map(|line| line.strip_prefix("threesigma_http_connections_over_client_bound_total "))
        .unwrap_or_else(|| panic!("no refusal counter in {metrics}"));
    assert!(refused.trim().parse::<u64>().unwrap() >= 2, "{refused}");

    // Room comes back when connections close: the server notices each close on its own
    // schedule, so wait (bounded) for a POST to be accepted.
    drop(held);
    let mut accepted = false;
    for _ in 0..100 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        if stream.write_all(post.as_bytes()).await.is_ok() {
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                stream.read_buf(&mut answer),
            )
            .await;
            if answer.starts_with(b"HTTP/1.1 200") {
                accepted = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(accepted, "no room after the connections closed");
    assert_eq!(
        app.stored_messages().await,
        vec!["over the bound".to_owned()]
    );
}

/// A client with a token that declares a 16 MiB body and sends nothing used to hold the
/// whole in-flight budget until its body deadline: every other request got 503. Bodies
/// are admitted as they arrive now, so it holds nothing.
#[tokio::test]
async fn a_declared_but_unsent_body_holds_no_budget() {
    use tokio::io::AsyncWriteExt;

    let app = crate::helpers::spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let token = crate::helpers::ingest_token();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(
        format!(
            "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 16000000\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Let the server read the head and reach the body.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let response = app
        .post_logs(&serde_json::json!({"service": "other", "message": "still admitted"}))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(
        app.stored_messages().await,
        vec!["still admitted".to_owned()]
    );
    drop(idle);
}
