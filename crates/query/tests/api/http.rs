//! HTTP behaviour every route shares: bad parameters, health and unknown routes, text that
//! PostgreSQL cannot store, security headers, bounded bodies.

use auth::{Role, Scope};
use chrono::Utc;
use domain::Severity;
use serde_json::{Value, json};

use crate::helpers::{client_with, spawn_app, token};

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
        ("/api/v1/incidents?signal=errors", "signal"),
        // A misspelt filter must not silently return everything.
        ("/api/v1/incidents?serivce=esc", "serivce"),
        ("/api/v1/logs?servce=esc", "servce"),
        ("/api/v1/incidents/1/logs?page=2", "page"),
        // Endpoints without parameters refuse them too.
        ("/api/v1/incidents/1?verbose=1", "verbose"),
        ("/api/v1/services?limt=2", "limt"),
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

    // The health endpoints too (they were a 404), and HEAD probes them like GET.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains("GET"), "{path}: {allow}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed", "{path}");
    }
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .head(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
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
