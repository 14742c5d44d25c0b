//! `Idempotency-Key`: a request sent again is stored once.

use serde_json::{Value, json};

use crate::helpers::{client_with, spawn_app};

const NDJSON: &str = "application/x-ndjson";

fn body(messages: &[&str]) -> String {
    messages
        .iter()
        .map(|message| {
            json!({"service": "checkout", "level": "error", "message": message}).to_string() + "\n"
        })
        .collect()
}

async fn post_keyed(
    client: &reqwest::Client,
    address: &str,
    key: &str,
    body: impl Into<reqwest::Body>,
    gzip: bool,
) -> reqwest::Response {
    let mut request = client
        .post(format!("{address}/api/v1/logs"))
        .header("Content-Type", NDJSON)
        .header("Idempotency-Key", key);
    if gzip {
        request = request.header("Content-Encoding", "gzip");
    }
    request.body(body).send().await.unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn metric(app: &crate::helpers::TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_request_sent_again_with_its_key_is_stored_once() {
    let app = spawn_app().await;
    let first = body(&["card declined", "card expired"]);
    let response = post_keyed(&app.client, &app.address, "order-17", first.clone(), false).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"accepted": 2, "rejected": 0, "errors": []}));

    // The shipper never saw the answer and sends it again, plain and then compressed: the
    // same answer, nothing stored twice.
    for gzipped in [false, true] {
        let again = if gzipped {
            gzip(first.as_bytes())
        } else {
            first.clone().into_bytes()
        };
        let response = post_keyed(&app.client, &app.address, "order-17", again, gzipped).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), answer);
    }
    assert_eq!(
        app.stored_messages().await,
        ["card declined", "card expired"]
    );
    assert_eq!(
        metric(&app, "threesigma_ingest_requests_repeated_total").await,
        2.0
    );

    // The same key with other events is a client bug: refused, nothing stored.
    let other = body(&["card declined", "card stolen"]);
    let response = post_keyed(&app.client, &app.address, "order-17", other.clone(), false).await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "unprocessable");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{error}"
    );
    assert_eq!(app.stored_messages().await.len(), 2);

    // Keys are the caller's own: another shipper's "order-17" is another request.
    let other_shipper = client_with(&auth::testing::token(
        "other-shipper",
        &[auth::Scope::Ingest],
        None,
    ));
    let response = post_keyed(&other_shipper, &app.address, "order-17", other, false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.stored_messages().await.len(), 4);

    // Without a key, the same body is stored again (at-least-once, as before).
    let response = app.post("/api/v1/logs", NDJSON, first).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.stored_messages().await.len(), 6);
}

#[tokio::test]
async fn concurrent_copies_of_a_keyed_request_are_stored_once() {
    let app = spawn_app().await;
    let events = body(&["one", "two", "three"]);
    let sends = (0..12).map(|_| {
        post_keyed(
            &app.client,
            &app.address,
            "retry-storm",
            events.clone(),
            false,
        )
    });
    let responses = futures_util::future::join_all(sends).await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.stored_messages().await, ["one", "three", "two"]);
}

#[tokio::test]
async fn malformed_keys_are_400_and_store_nothing() {
    let app = spawn_app().await;
    for key in ["x".repeat(256), " ".to_owned(), "caf\u{e9}".to_owned()] {
        let request = app
            .client
            .post(format!("{}/api/v1/logs", app.address))
            .header("Content-Type", NDJSON)
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .body(body(&["kept out"]));
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{key:?}");
        let error: Value = response.json().await.unwrap();
        let message = error["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains("idempotency-key"), "{error}");
    }
    assert!(app.stored_messages().await.is_empty());
}

/// Ingest with one writer reaching PostgreSQL through `proxy`, that writer's connection
/// opened by a first request (so answers can then be swallowed on it).
async fn app_behind(
    proxy: &crate::helpers::ReplyProxy,
    customise: impl FnOnce(&mut ingest::Settings),
) -> crate::helpers::TestApp {
    let app = crate::helpers::spawn_app_with(|settings| {
        let url = proxy.url_for(settings.database.url.expose());
        settings.database.url = url.into();
        settings.ingest.attempt_timeout = std::time::Duration::from_secs(60);
        settings.ingest.writers = 1;
        customise(settings);
    })
    .await;
    let response = app.post("/api/v1/logs", NDJSON, body(&["warm-up"])).await;
    assert_eq!(response.status(), 200);
    app
}

/// Whether `count` messages are stored within 10 s.
async fn stored_within(app: &crate::helpers::TestApp, count: usize) -> bool {
    for _ in 0..200 {
        if app.stored_messages().await.len() >= count {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// The database commits a batch but its answer never reaches ingest (a primary that dies
/// between COMMIT and reply): ingest sends the batch again on a new connection, finds it
/// committed, answers 200, and the rows are there once.
#[tokio::test]
async fn a_batch_whose_commit_answer_was_lost_is_not_written_again() {
    let proxy = crate::helpers::ReplyProxy::start(&store::testing::server_url()).await;
    let app = app_behind(&proxy, |_| {}).await;

    proxy.mute(true);
    let client = app.client.clone();
    let address = app.address.clone();
    let sent = tokio::spawn(async move {
        client
            .post(format!("{address}/api/v1/logs"))
            .header("Content-Type", NDJSON)
            .body(body(&["lost answer 1", "lost answer 2"]))
            .send()
            .await
            .unwrap()
    });
    // The batch is committed while its answer is being swallowed.
    assert!(
        stored_within(&app, 3).await,
        "the batch reached the database"
    );
    assert!(
        !sent.is_finished(),
        "no answer while the database's reply is lost"
    );
    // The connection dies; the database is reachable again through a new one.
    proxy.mute(false);
    proxy.cut();

    let response = tokio::time::timeout(std::time::Duration::from_secs(30), sent)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.stored_messages().await,
        ["lost answer 1", "lost answer 2", "warm-up"],
        "stored once"
    );
    assert_eq!(
        metric(&app, "threesigma_ingest_batches_already_stored_total").await,
        1.0
    );
}

/// The only writer waits on a batch in doubt while the database is down: a request queued
/// behind it is still told 503 at its own deadline (not when the writer is free again), is
/// not stored, and the batch in doubt is answered 200 once the database is back.
#[tokio::test]
async fn requests_queued_behind_a_batch_in_doubt_are_answered_on_time() {
    let proxy = crate::helpers::ReplyProxy::start(&store::testing::server_url()).await;
    let app = app_behind(&proxy, |settings| {
        settings.ingest.request_timeout = std::time::Duration::from_secs(1);
        settings.ingest.in_doubt_timeout = std::time::Duration::from_secs(60);
    })
    .await;

    proxy.mute(true);
    let post = |message: &'static str| {
        let client = app.client.clone();
        let address = app.address.clone();
        tokio::spawn(async move {
            let response = client
                .post(format!("{address}/api/v1/logs"))
                .header("Content-Type", NDJSON)
                .body(body(&[message]))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), std::time::Instant::now())
        })
    };
    let in_doubt = post("in doubt");
    assert!(
        stored_within(&app, 2).await,
        "the batch reached the database"
    );
    // The database goes away with the answer: the batch is in doubt, and it stays so.
    proxy.refuse(true);
    proxy.mute(false);
    proxy.cut();

    let queued_at = std::time::Instant::now();
    let (status, answered_at) =
        tokio::time::timeout(std::time::Duration::from_secs(20), post("queued"))
            .await
            .expect("the queued request is answered")
            .unwrap();
    assert_eq!(status, 503);
    let waited = answered_at - queued_at;
    assert!(
        waited < std::time::Duration::from_secs(5),
        "told 503 at its deadline (1 s), not when the writer was free: {waited:?}"
    );
    assert!(!in_doubt.is_finished(), "the batch in doubt still waits");

    proxy.refuse(false);
    let (status, _) = tokio::time::timeout(std::time::Duration::from_secs(30), in_doubt)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(app.stored_messages().await, ["in doubt", "warm-up"]);
}

/// With buffered acknowledgements a request is answered 202 before its key is looked up:
/// reusing a key for other events cannot be refused, so they are dropped and counted lost.
#[tokio::test]
async fn a_reused_key_under_buffered_acks_counts_its_events_lost() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.ingest.ack = ingest::settings::AckMode::Buffered;
    })
    .await;
    let response = post_keyed(&app.client, &app.address, "k-1", body(&["first"]), false).await;
    assert_eq!(response.status(), 202);
    assert!(stored_within(&app, 1).await);
    assert_eq!(app.stored_messages().await, ["first"]);

    let other = body(&["second", "third"]);
    let response = post_keyed(&app.client, &app.address, "k-1", other, false).await;
    assert_eq!(response.status(), 202);
    let mut lost = 0.0;
    for _ in 0..100 {
        lost = metric(&app, "threesigma_ingest_events_lost_total").await;
        if lost > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(lost, 2.0);
    assert_eq!(
        metric(&app, "threesigma_ingest_idempotency_keys_reused_total").await,
        1.0
    );
    assert_eq!(app.stored_messages().await, ["first"]);
}
