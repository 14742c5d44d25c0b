//! The services overview: counts over the hour including the current minute, the detector's
//! own verdict (never recomputed here), keyset pages like every other list.

use chrono::{Duration, Utc};
use domain::detection::{Algorithm, Reach};
use domain::{Minute, Severity};
use store::status::ServiceStatus;

use crate::helpers::spawn_app;

fn verdict(service: &str, minute: Minute) -> ServiceStatus {
    ServiceStatus {
        service: service.to_owned(),
        judged_at: minute.plus(1).start(),
        minute: minute.start(),
        errors: 1,
        total: 2,
        expected: 1.02,
        spread: 1.03,
        z: -0.02,
        p_value: None,
        fires: false,
        baseline_mean: 1.0,
        baseline_stddev: 0.0,
        baseline_minutes: 30,
        baseline_total_mean: 2.0,
        baseline_reach: Reach::Window,
        algorithm: Algorithm::NegativeBinomial,
        config: None,
    }
}

#[tokio::test]
async fn services_show_the_hour_and_the_detectors_verdict() {
    let app = spawn_app().await;
    let now = Utc::now();
    let minute = Minute::containing(now);
    let mut events = Vec::new();
    for back in 0..=59 {
        let at = minute.minus(back).start() + Duration::seconds(1);
        events.push(("checkout", "error", "boom", at));
        events.push(("checkout", "info", "ok", at));
    }
    // Older than the hour: not counted.
    events.push(("checkout", "error", "old", minute.minus(60).start()));
    app.logs(&events).await;
    // A service with an active incident and no events this hour is still listed.
    app.incident("quiet", now - Duration::hours(3), Severity::Warning)
        .await;
    let mut conn = app.connection().await;
    store::status::record(&mut conn, &[verdict("checkout", minute.minus(1))])
        .await
        .unwrap();

    let (status, body) = app.get("/api/v1/services").await;
    assert_eq!(status, 200, "{body}");
    let services = body["data"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{body}");
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    let checkout = &services[0];
    assert_eq!(checkout["service"], "checkout");
    // The current minute counts.
    assert_eq!(checkout["errors_last_hour"], 60);
    assert_eq!(checkout["events_last_hour"], 120);
    // The verdict is the detector's, as written.
    let verdict = &checkout["verdict"];
    assert_eq!(
        verdict["minute"],
        minute
            .minus(1)
            .start()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(verdict["baseline"]["minutes"], 30);
    assert_eq!(verdict["baseline_reach"], "window");
    assert_eq!(verdict["p_value"], serde_json::Value::Null);
    assert_eq!(verdict["spread"], 1.03);
    let quiet = &services[1];
    assert_eq!(quiet["service"], "quiet");
    assert_eq!(quiet["errors_last_hour"], 0);
    assert_eq!(quiet["verdict"], serde_json::Value::Null);
    assert_eq!(quiet["active_incidents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn services_are_keyset_paged_by_name() {
    let app = spawn_app().await;
    let at = Utc::now();
    let names = ["a", "b", "c", "d", "e"];
    let events: Vec<_> = names.iter().map(|name| (*name, "info", "ok", at)).collect();
    app.logs(&events).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/services?limit=2".to_owned();
    loop {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{body}");
        for service in body["data"].as_array().unwrap() {
            seen.push(service["service"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/services?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, names);
    let (status, body) = app.get("/api/v1/services?limit=2&cursor=").await;
    assert_eq!(status, 200, "an empty cursor is the first page: {body}");
    assert_eq!(body["data"][0]["service"], "a");
    let (status, body) = app.get("/api/v1/services?cursor=bogus").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.get("/api/v1/services?limt=2").await;
    assert_eq!(status, 400, "{body}");
}
