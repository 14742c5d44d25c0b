//! Log search.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn logs_filter_by_service_level_time_and_text() {
    let app = spawn_app().await;
    let now = Utc::now();
    app.logs(&[
        (
            "a",
            "error",
            "payment failed: timeout",
            now - Duration::seconds(30),
        ),
        ("a", "info", "payment ok", now - Duration::seconds(20)),
        ("b", "fatal", "disk FULL 100%", now - Duration::seconds(10)),
        ("a", "warn", "slow payment", now - Duration::hours(2)),
    ])
    .await;
    let messages = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = app.get("/api/v1/logs").await;
    assert_eq!(
        messages(&page),
        [
            "disk FULL 100%",
            "payment ok",
            "payment failed: timeout",
            "slow payment"
        ]
    );
    let (_, page) = app.get("/api/v1/logs?level=error").await;
    assert_eq!(
        messages(&page),
        ["disk FULL 100%", "payment failed: timeout"]
    );
    let (_, page) = app.get("/api/v1/logs?service=a&q=PAYMENT").await;
    assert_eq!(
        messages(&page),
        ["payment ok", "payment failed: timeout", "slow payment"]
    );
    let (_, page) = app.get("/api/v1/logs?q=100%25").await;
    assert_eq!(messages(&page), ["disk FULL 100%"]);
    let since = (now - Duration::hours(1)).timestamp();
    let (_, page) = app
        .get(&format!("/api/v1/logs?service=a&since={since}&limit=1"))
        .await;
    assert_eq!(messages(&page), ["payment ok"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = app
        .get(&format!(
            "/api/v1/logs?service=a&since={since}&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(messages(&page), ["payment failed: timeout"]);
    assert!(page["next_cursor"].is_null());
    assert_eq!(page["data"][0]["level"], "error");
    assert_eq!(page["data"][0]["attributes"], json!({}));
}

fn messages(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_finds_words_phrases_and_attributes_before_and_after_indexing() {
    let app = spawn_app().await;
    let now = Utc::now();
    let at = |seconds: i64| (now - Duration::seconds(seconds)).to_rfc3339();
    app.events(vec![
        json!({"service": "pay", "level": "error", "message": "Card declined for order 17", "ts": at(50), "attributes": {"host": "web-3", "status": 402}}),
        json!({"service": "pay", "message": "declined: card expired", "ts": at(40), "attributes": {"host": "web-1"}}),
        json!({"service": "pay", "message": "cards declined", "ts": at(30), "attributes": {"host": "web-3"}}),
        json!({"service": "shop", "message": "checkout failed", "ts": at(20), "attributes": {"status": 500, "host": "web-3"}}),
        json!({"service": "pay", "message": "card declined long ago", "ts": (now - Duration::days(2)).to_rfc3339()}),
    ])
    .await;

    for indexed in [false, true] {
        let (status, page) = app.get("/api/v1/logs?q=card%20DECLINED").await;
        assert_eq!(status, 200, "{page}");
        // Words in any order and case; "cards" is not "card"; the last 24 hours by default.
        assert_eq!(
            messages(&page),
            ["declined: card expired", "Card declined for order 17"],
            "indexed: {indexed}"
        );
        let (_, page) = app.get("/api/v1/logs?q=%22card%20declined%22").await;
        assert_eq!(messages(&page), ["Card declined for order 17"]);
        let (_, page) = app.get("/api/v1/logs?q=declined&attr.host=web-3").await;
        assert_eq!(
            messages(&page),
            ["cards declined", "Card declined for order 17"]
        );
        let (_, page) = app.get("/api/v1/logs?attr.status=500").await;
        assert_eq!(messages(&page), ["checkout failed"]);
        let (_, page) = app
            .get("/api/v1/logs?attr.host=web-3&service=pay&level=error")
            .await;
        assert_eq!(messages(&page), ["Card declined for order 17"]);
        let (_, page) = app.get("/api/v1/logs?match=substring&q=ARDS%20DEC").await;
        assert_eq!(messages(&page), ["cards declined"]);
        let since = (now - Duration::days(3)).timestamp();
        let (_, page) = app.get(&format!("/api/v1/logs?q=long&since={since}")).await;
        assert_eq!(messages(&page), ["card declined long ago"]);
        let (_, page) = app.get("/api/v1/logs?q=long").await;
        assert_eq!(messages(&page), Vec::<String>::new());
        assert!(page["next_cursor"].is_null());

        let mut conn = app.connection().await;
        store::search::index_pending(&mut conn, Utc::now() + Duration::minutes(1), 1000)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn searches_that_cannot_be_served_are_refused_with_a_reason() {
    let app = spawn_app().await;
    for (path, reason) in [
        ("/api/v1/logs?q=%21%21%21", "match=substring"),
        ("/api/v1/logs?q=x&match=regex", "words or substring"),
        ("/api/v1/logs?attr.=x", "empty key"),
        ("/api/v1/logs?colour=blue", "colour"),
        ("/api/v1/logs?limit=ten", "invalid"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{path}: {message}");
    }
}

/// Searches take turns (`query.max_concurrent_searches`): while one runs, another waits up
/// to `search_budget` for its turn and is then told 503 with `Retry-After`, without taking a
/// connection from other reads; the first is answered once it can read.
#[tokio::test]
async fn searches_beyond_the_concurrency_limit_wait_their_turn_then_get_503() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.query.max_concurrent_searches = 1;
        settings.query.search_budget = std::time::Duration::from_millis(500);
    })
    .await;
    app.logs(&[(
        "a",
        "error",
        "card declined",
        Utc::now() - Duration::minutes(1),
    )])
    .await;

    // Hold the log tables: a search blocks inside its first statement, holding its turn.
    let lock = session(&app.db.url).await;
    lock.batch_execute(
        "BEGIN; LOCK TABLE logs, log_search_blocks, log_search_pending IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .unwrap();
    let client = app.client.clone();
    let url = format!("{}/api/v1/logs?q=declined", app.address);
    let first = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    // Watched from another session: inside the locking transaction pg_stat_activity is a
    // snapshot taken at its first read.
    let watch = session(&app.db.url).await;
    let mut blocked = false;
    for _ in 0..400 {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            blocked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(blocked, "the first search is reading (blocked on the lock)");

    let second = app
        .client
        .get(format!("{}/api/v1/logs?q=card", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: Value = second.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too many log searches"),
        "{body}"
    );
    let (status, _) = app.get("/api/v1/incidents").await;
    assert_eq!(status, 200, "other reads still get a connection");
    assert!(!first.is_finished());

    lock.batch_execute("COMMIT").await.unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    let page: Value = first.json().await.unwrap();
    assert_eq!(page["data"][0]["message"], "card declined");
}

/// A plain PostgreSQL session of its own.
async fn session(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}
