//! The query API over HTTP against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth::{Role, Scope};
use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use domain::{EventLimits, LogEvent, Minute, Severity};
use serde_json::{Value, json};
use store::incidents::Actor;
use store::models::NewIncident;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

struct TestApp {
    address: String,
    db: TestDatabase,
    /// Sends a read token.
    client: reqwest::Client,
    shutdown: CancellationToken,
}

/// A client that sends `token` with every request.
fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

fn token(subject: &str, scopes: &[Scope], role: Option<Role>) -> String {
    auth::testing::token(subject, scopes, role)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

async fn spawn_app_with(customise: impl FnOnce(&mut query::Settings)) -> TestApp {
    runtime::telemetry::init_for_tests();
    let db = TestDatabase::create().await;
    let mut settings = query::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.server.workers = 1;
    settings.database.url = db.url.clone().into();
    settings.database.pool_size = 2;
    settings.auth = auth::testing::settings();
    settings.auth.revocation_refresh = std::time::Duration::from_millis(100);
    settings.rate_limit.per_second = 0;
    customise(&mut settings);
    let app = query::Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    TestApp {
        address,
        db,
        client: client_with(&token("reader", &[Scope::Read], None)),
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
    async fn incident(&self, service: &str, at: DateTime<Utc>, severity: Severity) -> i64 {
        let mut conn = self.connection().await;
        let new = NewIncident {
            severity,
            ..store::testing::new_incident(service, at)
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
            app.incident(
                &format!("s{i}"),
                now - Duration::minutes(i),
                Severity::Warning,
            )
            .await,
        );
    }
    let (status, first) = app.get("/api/v1/incidents?limit=3").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&first), expected[..3]);
    let (_, empty_cursor) = app.get("/api/v1/incidents?limit=3&cursor=").await;
    assert_eq!(
        ids(&empty_cursor),
        expected[..3],
        "an empty cursor is the first page"
    );
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
    let warning = app
        .incident("a", now - Duration::hours(2), Severity::Warning)
        .await;
    let critical = app.incident("b", now, Severity::Critical).await;
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
        // Beyond the documented ±9e18 epoch bound (found by schemathesis).
        ("/api/v1/logs?until=9.000000000000001e%2B18", "until"),
        ("/api/v1/incidents?since=-9000000000000000001", "since"),
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
    let id = app.incident("a", Utc::now(), Severity::Warning).await;
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

    // A known path with another method: 405 naming what is allowed, as JSON.
    let response = app
        .client
        .delete(format!("{}/api/v1/incidents", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    assert!(body["message"].as_str().unwrap().contains("GET"), "{body}");
}

/// PostgreSQL text cannot hold NUL; like ingest, the API stores U+FFFD instead of failing.
#[tokio::test]
async fn nul_characters_in_text_are_replaced_not_a_500() {
    let app = spawn_app().await;
    let id = app
        .incident("checkout", Utc::now(), Severity::Critical)
        .await;
    let operator = client_with(&token(
        "o@example.com",
        &[Scope::Read],
        Some(Role::Operator),
    ));
    let (status, body) = app
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/acknowledge"),
            json!({"reason": "bad\u{0}byte"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["timeline"][1]["reason"], "bad\u{FFFD}byte");
    for path in [
        "/api/v1/incidents?service=a%00b",
        "/api/v1/logs?service=a%00b&q=x%00y",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = app
        .login("a\u{0}@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 401);
}

impl TestApp {
    async fn post(&self, client: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        let response = client
            .post(format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_with(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let response = client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn add_user(&self, email: &str, password: &str, role: Role) {
        let mut conn = self.connection().await;
        let hash = auth::password::hash(password).unwrap();
        store::users::add(&mut conn, email, &hash, role.as_str())
            .await
            .unwrap()
            .unwrap();
    }

    async fn login(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(
            &reqwest::Client::new(),
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }
}

#[tokio::test]
async fn every_bad_token_is_refused() {
    let app = spawn_app().await;
    let (status, _) = app
        .get_with(&reqwest::Client::new(), "/api/v1/incidents")
        .await;
    assert_eq!(status, 401, "missing");
    for (case, forged) in auth::testing::forged_tokens() {
        let (status, body) = app
            .get_with(&client_with(&forged), "/api/v1/incidents")
            .await;
        assert_eq!(status, 401, "{case}: {body}");
    }
    let shipper = client_with(&token("shipper", &[Scope::Ingest], None));
    let (status, body) = app.get_with(&shipper, "/api/v1/logs").await;
    assert_eq!(status, 403, "an ingest token cannot read: {body}");
}

#[tokio::test]
async fn revoked_tokens_stop_working_within_seconds() {
    let app = spawn_app().await;
    let issued = auth::testing::settings()
        .signer()
        .unwrap()
        .unwrap()
        .issue(
            "reader",
            &[Scope::Read],
            None,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let client = client_with(&issued.token);
    assert_eq!(app.get_with(&client, "/api/v1/incidents").await.0, 200);
    let mut conn = app.connection().await;
    store::users::revoke_token(&mut conn, &issued.jti, issued.expires_at, "test")
        .await
        .unwrap();
    let mut status = 200;
    for _ in 0..100 {
        status = app.get_with(&client, "/api/v1/incidents").await.0;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401);
}

#[tokio::test]
async fn login_gives_a_token_with_the_users_role() {
    let app = spawn_app().await;
    app.add_user("Alice@Example.com", "correct horse battery", Role::Operator)
        .await;
    let (status, body) = app.login("alice@example.com", "wrong horse battery").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("wrong email or password"))
    );
    let (status, unknown) = app
        .login("nobody@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        unknown["message"], body["message"],
        "unknown emails look like wrong passwords"
    );
    let (status, body) = app
        .login("alice@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "operator");
    let session = client_with(body["token"].as_str().unwrap());
    assert_eq!(app.get_with(&session, "/api/v1/incidents").await.0, 200);
}

#[tokio::test]
async fn operators_acknowledge_and_resolve_and_the_timeline_says_who() {
    let app = spawn_app().await;
    let id = app
        .incident("checkout", Utc::now(), Severity::Critical)
        .await;
    let viewer = client_with(&token(
        "vera@example.com",
        &[Scope::Read],
        Some(Role::Viewer),
    ));
    let operator = client_with(&token(
        "otto@example.com",
        &[Scope::Read],
        Some(Role::Operator),
    ));

    let (status, body) = app
        .post(
            &viewer,
            &format!("/api/v1/incidents/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // The body is an object or nothing (serde alone would read `[]` as an empty struct).
    let (status, body) = app
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/acknowledge"),
            json!([]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/acknowledge"),
            json!({"reason": "looking"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "acknowledged");
    assert_eq!(body["acknowledged_by"], "otto@example.com");
    let (status, _) = app
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/acknowledge"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "already acknowledged");

    let (status, body) = app
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({"reason": "fixed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["resolved_by"], "otto@example.com");
    let timeline: Vec<(String, String, String)> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        timeline[1],
        (
            "acknowledged".to_owned(),
            "otto@example.com".to_owned(),
            "looking".to_owned()
        )
    );
    assert_eq!(
        timeline[2],
        (
            "resolved".to_owned(),
            "otto@example.com".to_owned(),
            "fixed".to_owned()
        )
    );
    let (status, _) = app
        .post(
            &operator,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .post(&operator, "/api/v1/incidents/424242/resolve", json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn services_overview_has_counts_and_z() {
    let app = spawn_app().await;
    let now = Utc::now();
    let minute = Minute::containing(now);
    let mut events = Vec::new();
    for back in 1..=31 {
        let at = minute.minus(back).start() + Duration::seconds(10);
        events.push(("checkout", "error", "boom", at));
        events.push(("checkout", "info", "ok", at));
    }
    app.logs(&events).await;
    app.incident("checkout", now, Severity::Warning).await;
    let (status, body) = app.get("/api/v1/services").await;
    assert_eq!(status, 200, "{body}");
    let service = &body.as_array().unwrap()[0];
    assert_eq!(service["service"], "checkout");
    assert_eq!(
        (service["errors"].as_u64(), service["total"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(service["errors_last_hour"], 31);
    assert_eq!(service["baseline"]["minutes"], 30);
    assert!(service["z"].as_f64().unwrap().is_finite());
    assert_eq!(service["active_incidents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn no_answer_ever_carries_a_password_hash() {
    let app = spawn_app().await;
    app.add_user("root@example.com", "correct horse battery", Role::Admin)
        .await;
    let (_, login) = app.login("root@example.com", "correct horse battery").await;
    let admin = client_with(login["token"].as_str().unwrap());
    let id = app
        .incident("checkout", Utc::now(), Severity::Warning)
        .await;
    app.logs(&[("checkout", "error", "boom", Utc::now())]).await;
    let mut bodies = vec![login.to_string()];
    for path in [
        "/api/v1/incidents".to_owned(),
        format!("/api/v1/incidents/{id}"),
        format!("/api/v1/incidents/{id}/logs"),
        "/api/v1/logs".to_owned(),
        "/api/v1/services".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/metrics".to_owned(),
    ] {
        let (status, body) = app.get_with(&admin, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        bodies.push(body);
    }
    for action in ["acknowledge", "resolve"] {
        let (_, body) = app
            .post(
                &admin,
                &format!("/api/v1/incidents/{id}/{action}"),
                json!({}),
            )
            .await;
        bodies.push(body.to_string());
    }
    for body in bodies {
        assert!(!body.contains("$argon2"), "{body}");
        assert!(!body.contains("password_hash"), "{body}");
    }
}

#[tokio::test]
async fn rate_limits_refuse_the_excess_and_nothing_below() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.per_second = 2;
        settings.rate_limit.burst = 20;
    })
    .await;
    // Under the limit: the burst passes whole.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(app.get("/api/v1/incidents").await.0);
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Over it: 300 more as fast as possible; only the replenished few may pass.
    let started = std::time::Instant::now();
    let mut refused = 0;
    for _ in 0..300 {
        let response = app
            .client
            .get(format!("{}/api/v1/incidents", app.address))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused += 1;
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    let replenished = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    let excess = 300 - replenished.min(300);
    println!(
        "rate limit: {refused} of 300 requests beyond the burst refused; the rate replenished \
         at most {replenished} during the run, so at least {excess} were excess ({:.1}% of them refused)",
        100.0 * (refused.min(excess)) as f64 / excess as f64
    );
    assert!(
        refused as f64 >= 0.98 * excess as f64,
        "{refused} of {excess}"
    );
}

#[tokio::test]
async fn login_attempts_have_their_own_stricter_limit() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.login_per_minute = 6;
        settings.rate_limit.login_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            app.login("nobody@example.com", "correct horse battery")
                .await
                .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
}

#[tokio::test]
async fn openapi_document_and_docs_page() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_with(&reqwest::Client::new(), "/api/v1/openapi.json")
        .await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&body).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/logs",
        "/api/v1/incidents/{id}/acknowledge",
        "/api/v1/incidents/{id}/resolve",
        "/api/v1/logs",
        "/api/v1/services",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    // Parameters say what the server accepts, and every failure code is documented.
    let list = &document["paths"]["/api/v1/incidents"]["get"];
    let parameter = |name: &str| {
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    assert_eq!(
        parameter("status")["enum"],
        json!(["open", "acknowledged", "resolved"])
    );
    assert_eq!(parameter("limit")["minimum"], 1);
    assert_eq!(parameter("limit")["maximum"], 500);
    assert_eq!(parameter("since")["anyOf"][0]["format"], "date-time");
    assert_eq!(parameter("since")["anyOf"][1]["type"], "number");
    for code in ["200", "400", "401", "403", "429", "503"] {
        assert!(
            list["responses"][code].is_object(),
            "GET incidents documents {code}"
        );
    }
    let resolve = &document["paths"]["/api/v1/incidents/{id}/resolve"]["post"];
    for code in ["404", "409", "413"] {
        assert!(
            resolve["responses"][code].is_object(),
            "resolve documents {code}"
        );
    }
    let (status, page) = app.get_with(&reqwest::Client::new(), "/api/v1/docs/").await;
    assert_eq!(status, 200);
    assert!(page.contains("swagger"), "{page}");
}

#[tokio::test]
async fn security_headers_and_no_cors_by_default() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/v1/incidents", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(!headers.contains_key("access-control-allow-origin"));
    // Bodies are bounded.
    let big = "x".repeat(64 * 1024);
    let (status, _) = app
        .post(
            &reqwest::Client::new(),
            "/api/v1/auth/login",
            json!({"email": big, "password": "p"}),
        )
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn with_only_a_public_key_reads_work_and_login_is_disabled() {
    use auth::{AuthSettings, JwtAlgorithm};
    let key = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/keys")
            .join(name)
            .display()
            .to_string()
    };
    let app = spawn_app_with(|settings| {
        settings.auth = AuthSettings {
            algorithm: JwtAlgorithm::RS256,
            public_key_file: key("rsa-public.pem"),
            ..AuthSettings::default()
        };
    })
    .await;
    let minting = AuthSettings {
        algorithm: JwtAlgorithm::RS256,
        private_key_file: key("rsa-private.pem"),
        ..AuthSettings::default()
    };
    let issued = minting
        .signer()
        .unwrap()
        .unwrap()
        .issue(
            "grafana",
            &[Scope::Read],
            None,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        app.get_with(&client_with(&issued.token), "/api/v1/incidents")
            .await
            .0,
        200
    );
    // An HS256 token (the test secret) is the wrong algorithm here.
    assert_eq!(app.get_with(&app.client, "/api/v1/incidents").await.0, 401);
    let (status, body) = app
        .login("anyone@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 503, "{body}");
}
