//! The query API over HTTP against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use domain::{EventLimits, LogEvent, Minute};
use serde_json::{Value, json};
use store::incidents::Actor;
use store::models::NewIncident;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

struct TestApp {
    address: String,
    db: TestDatabase,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_app() -> TestApp {
    web::telemetry::init_for_tests();
    let db = TestDatabase::create().await;
    let mut settings = query::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.server.workers = 1;
    settings.database.url = db.url.clone();
    settings.database.pool_size = 2;
    let app = query::Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    TestApp {
        address,
        db,
        client: reqwest::Client::new(),
        shutdown,
    }
}

impl TestApp {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn connection(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db.url).await.unwrap()
    }

    /// Opens an incident for `service` at `at` with the given severity; returns its id.
    async fn incident(&self, service: &str, at: DateTime<Utc>, severity: &str) -> i64 {
        let mut conn = self.connection().await;
        let minute = Minute::containing(at).start();
        let new = NewIncident {
            service,
            signal: "error_count",
            severity,
            title: "errors up",
            opened_at: at,
            last_evaluated_at: at,
            first_minute: minute,
            last_fired_minute: minute,
            current_z: 4.0,
            peak_z: 4.0,
            current_count: 20,
            current_total: 200,
            peak_count: 20,
            p_value: None,
            baseline_mean: 2.0,
            baseline_stddev: 1.0,
            baseline_minutes: 30,
            baseline_total_mean: 40.0,
            algorithm: "classic",
            z_threshold: 3.0,
            min_count: 5,
        };
        let actor = Actor {
            name: "detector",
            reason: "test",
        };
        store::incidents::open(&mut conn, &new, actor)
            .await
            .unwrap()
            .unwrap()
    }

    async fn logs(&self, events: &[(&str, &str, &str, DateTime<Utc>)]) {
        let events: Vec<LogEvent> = events
            .iter()
            .map(|(service, level, message, at)| {
                LogEvent::from_json(
                    json!({"service": service, "level": level, "message": message, "ts": at.to_rfc3339()}),
                    Utc::now(),
                    &EventLimits::default(),
                )
                .unwrap()
            })
            .collect();
        let config =
            store::pool::connection_config(&self.db.url, &store::PoolSettings::default()).unwrap();
        let mut client = store::bulk::BulkConnection::connect(&config).await.unwrap();
        client
            .write_batch(
                &events.iter().collect::<Vec<_>>(),
                0,
                store::bulk::BulkMethod::Copy,
            )
            .await
            .unwrap();
    }
}

fn ids(page: &Value) -> Vec<i64> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn incidents_page_newest_first_with_opaque_cursors() {
    let app = spawn_app().await;
    let now = Utc::now();
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(
            app.incident(&format!("s{i}"), now - Duration::minutes(i), "warning")
                .await,
        );
    }
    let (status, first) = app.get("/api/v1/incidents?limit=3").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&first), expected[..3]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/api/v1/incidents?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), expected[3..6]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let (_, last) = app
        .get(&format!("/api/v1/incidents?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(&last), expected[6..]);
    assert!(last["next_cursor"].is_null(), "the last page says so");
}

#[tokio::test]
async fn incident_filters_apply() {
    let app = spawn_app().await;
    let now = Utc::now();
    let warning = app.incident("a", now - Duration::hours(2), "warning").await;
    let critical = app.incident("b", now, "critical").await;
    let (_, page) = app.get("/api/v1/incidents?severity=critical").await;
    assert_eq!(ids(&page), [critical]);
    let (_, page) = app.get("/api/v1/incidents?service=a&status=open").await;
    assert_eq!(ids(&page), [warning]);
    let since = (now - Duration::hours(1)).to_rfc3339().replace('+', "%2B");
    let (_, page) = app.get(&format!("/api/v1/incidents?since={since}")).await;
    assert_eq!(ids(&page), [critical]);
    let (_, page) = app.get("/api/v1/incidents?status=resolved").await;
    assert_eq!(ids(&page), Vec::<i64>::new());
}

#[tokio::test]
async fn bad_parameters_are_400_with_reasons() {
    let app = spawn_app().await;
    for (path, reason) in [
        ("/api/v1/incidents?status=closed", "status"),
        ("/api/v1/incidents?severity=meh", "severity"),
        ("/api/v1/incidents?limit=0", "limit"),
        ("/api/v1/incidents?limit=501", "limit"),
        ("/api/v1/incidents?limit=ten", "query string"),
        ("/api/v1/incidents?since=yesterday", "since"),
        ("/api/v1/incidents?cursor=forged", "cursor"),
        ("/api/v1/logs?level=loud", "level"),
        ("/api/v1/incidents/abc", "path"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "bad_request", "{path}");
        assert!(
            body["message"].as_str().unwrap().contains(reason),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn incident_detail_has_baseline_and_timeline() {
    let app = spawn_app().await;
    let id = app.incident("a", Utc::now(), "warning").await;
    let (status, detail) = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        detail["baseline"],
        json!({"mean": 2.0, "stddev": 1.0, "minutes": 30, "total_mean": 40.0})
    );
    assert_eq!(detail["thresholds"]["algorithm"], "classic");
    assert_eq!(detail["timeline"][0]["kind"], "opened");
    assert_eq!(detail["timeline"][0]["actor"], "detector");
    let (status, body) = app.get("/api/v1/incidents/999999").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

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

#[tokio::test]
async fn health_and_unknown_routes() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    let (status, body) = app.get("/api/v1/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}
