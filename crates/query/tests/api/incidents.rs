//! Incident lists, filters, details, and operators acknowledging and resolving.

use auth::{Role, Scope};
use chrono::{Duration, Utc};
use domain::Severity;
use serde_json::{Value, json};

use crate::helpers::{client_with, spawn_app, token};

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

    let rate = store::incidents::open(
        &mut app.connection().await,
        &store::models::NewIncident {
            signal: domain::Signal::ErrorRate,
            ..store::testing::new_incident("a", now - Duration::hours(3))
        },
        store::incidents::Actor {
            name: "detector",
            reason: "test",
        },
    )
    .await
    .unwrap()
    .unwrap();
    let (_, page) = app.get("/api/v1/incidents?signal=error_rate").await;
    assert_eq!(ids(&page), [rate]);
    let (_, page) = app.get("/api/v1/incidents?signal=error_count").await;
    assert_eq!(ids(&page), [critical, warning]);

    // `active`: open and acknowledged, not resolved (the console lists them first).
    let mut conn = app.connection().await;
    let actor = store::incidents::Actor {
        name: "alice",
        reason: "",
    };
    assert!(
        store::incidents::acknowledge(&mut conn, warning, now, actor)
            .await
            .unwrap()
    );
    assert!(
        store::incidents::resolve(&mut conn, rate, now, actor)
            .await
            .unwrap()
    );
    let (_, page) = app.get("/api/v1/incidents?status=active").await;
    assert_eq!(ids(&page), [critical, warning]);
    let (_, page) = app.get("/api/v1/incidents?status=resolved").await;
    assert_eq!(ids(&page), [rate]);
    let (status, _) = app.get("/api/v1/incidents?status=all").await;
    assert_eq!(status, 400);
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
    // The rule that fired, with its own thresholds only (classic: z, not p).
    assert_eq!(
        detail["thresholds"],
        json!({"algorithm": "classic", "z_threshold": 3.0, "min_count": 5, "firing_count": 6,
               "dispersion": null, "rhythm_rise": null})
    );
    assert_eq!(
        detail["opening"],
        json!({"count": 20, "z": 4.0, "expected": 2.0, "spread": 1.0, "late_by_minutes": null})
    );
    assert_eq!(detail["timeline"][0]["kind"], "opened");
    assert_eq!(detail["timeline"][0]["actor"], "detector");
    // Not explained yet.
    assert_eq!(detail["explanation"], Value::Null);
    let (status, body) = app.get("/api/v1/incidents/999999").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
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
async fn incident_detail_carries_the_newest_explanation() {
    use domain::patterns::{AttributeChange, Explanation, PatternChange, SideSize};

    let app = spawn_app().await;
    let now = Utc::now();
    let id = app.incident("a", now, Severity::Warning).await;
    let mut conn = app.connection().await;
    let body = |template: &str| Explanation {
        window: SideSize {
            lines: 900,
            sampled: 300,
        },
        baseline: SideSize {
            lines: 60,
            sampled: 60,
        },
        attribute_baseline: domain::patterns::AttributeBaseline::Errors,
        patterns: vec![PatternChange {
            template: template.to_owned(),
            window_count: 870,
            baseline_count: 0,
            lift: Some(58.0),
            new: true,
            over_represented: true,
            example_log_id: 42,
            example_ts: now,
            example_message: "PaymentGateway declined order 41".to_owned(),
        }],
        attributes: vec![AttributeChange {
            key: "host".to_owned(),
            value: "web-9".to_owned(),
            window_count: 870,
            baseline_count: 0,
            lift: Some(58.0),
            new: true,
        }],
    };
    for (severity, minutes, template) in [
        (Severity::Warning, 0, "older <*>"),
        (Severity::Critical, 1, "PaymentGateway declined order <*>"),
    ] {
        let at = now + Duration::minutes(minutes);
        let new = store::explanations::NewExplanation {
            incident_id: id,
            severity,
            reopened: 0,
            computed_at: at,
            window_from: at - Duration::minutes(2),
            window_until: at,
            baseline_from: at - Duration::minutes(62),
            baseline_until: at - Duration::minutes(2),
            body: body(template),
        };
        assert!(store::explanations::insert(&mut conn, &new).await.unwrap());
    }
    let (status, detail) = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    let explanation = &detail["explanation"];
    assert_eq!(explanation["severity"], "critical");
    assert_eq!(explanation["window"]["lines"], 900);
    assert_eq!(explanation["window"]["sampled"], 300);
    assert_eq!(
        explanation["patterns"][0],
        json!({"template": "PaymentGateway declined order <*>", "window_count": 870,
               "baseline_count": 0, "lift": 58.0, "new": true, "over_represented": true,
               "example_log_id": 42, "example_ts": now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
               "example_message": "PaymentGateway declined order 41"})
    );
    assert_eq!(explanation["attributes"][0]["value"], "web-9");
    assert_eq!(explanation["attribute_baseline"], "errors");
}
