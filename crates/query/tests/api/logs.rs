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
