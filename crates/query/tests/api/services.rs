//! The services overview: counts over the hour including the current minute, the detector's
//! own verdict (never recomputed here), keyset pages like every other list.

use chrono::{Duration, Utc};
use domain::detection::{Algorithm, Reach};
use domain::{DetectionConfig, Minute, Severity};
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
    // The sparkline: one error in each minute of the hour, the current one last.
    assert_eq!(
        checkout["errors_per_minute"],
        serde_json::json!(vec![1; 60])
    );
    let quiet = &services[1];
    assert_eq!(quiet["service"], "quiet");
    assert_eq!(quiet["errors_last_hour"], 0);
    assert_eq!(quiet["verdict"], serde_json::Value::Null);
    assert_eq!(quiet["active_incidents"].as_array().unwrap().len(), 1);
    assert_eq!(quiet["errors_per_minute"], serde_json::json!(vec![0; 60]));
}

/// Forty minutes of a steady service (2 to 4 errors a minute) with a burst of 60 five
/// minutes ago.
async fn steady_with_a_burst(app: &crate::helpers::TestApp, now: Minute) {
    let mut events = Vec::new();
    for back in 0..=40_i64 {
        let at = now.minus(back).start() + Duration::seconds(2);
        let errors = if back == 5 { 60 } else { 2 + back % 3 };
        for _ in 0..errors {
            events.push(("checkout", "error", "timeout", at));
        }
        for _ in 0..10 {
            events.push(("checkout", "info", "ok", at));
        }
    }
    app.logs(&events).await;
}

#[tokio::test]
async fn a_series_draws_the_band_the_detector_judges_with() {
    let app = spawn_app().await;
    // The server judges "the current minute" by its own clock: start well inside a minute,
    // so that the request cannot cross into the next one.
    let into_minute = Utc::now() - Minute::containing(Utc::now()).start();
    if into_minute > Duration::seconds(50) {
        tokio::time::sleep((Duration::seconds(61) - into_minute).to_std().unwrap()).await;
    }
    let now = Minute::containing(Utc::now());
    steady_with_a_burst(&app, now).await;
    let since = now.minus(40).start().to_rfc3339();
    let path = format!(
        "/api/v1/services/checkout/series?since={}",
        since.replace('+', "%2B")
    );
    let (status, body) = app.get(&path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"], "default");
    assert_eq!(body["algorithm"], "negative_binomial");
    let minutes = body["minutes"].as_array().unwrap();
    // Forty complete minutes and the current one.
    assert_eq!(minutes.len(), 41, "{body}");
    let last = minutes.last().unwrap();
    assert_eq!(last["partial"], true);
    assert_eq!(last["threshold"], serde_json::Value::Null);
    for (index, point) in minutes[..40].iter().enumerate() {
        let back = 40 - index as i64;
        assert_eq!(point["partial"], false);
        if index < 10 {
            // The warm-up: nothing before the first minute to judge against.
            assert_eq!(point["baseline_mean"], serde_json::Value::Null, "{point}");
            continue;
        }
        let errors = point["errors"].as_i64().unwrap();
        let threshold = point["threshold"].as_i64().unwrap();
        let mean = point["baseline_mean"].as_f64().unwrap();
        assert!((2.0..=4.0).contains(&mean), "{point}");
        assert!(threshold > errors || back == 5, "{point}");
        assert_eq!(point["anomalous"], back == 5, "{point}");
        if back == 5 {
            assert!(errors >= threshold, "{point}");
        }
        assert_eq!(point["total"].as_i64().unwrap(), errors + 10);
    }

    // With the detector's own settings recorded, they are the ones drawn.
    let classic = DetectionConfig::classic();
    let mut row = verdict("checkout", now.minus(1));
    row.algorithm = Algorithm::Classic;
    row.config = Some(serde_json::to_value(&classic).unwrap());
    let mut conn = app.connection().await;
    store::status::record(&mut conn, &[row]).await.unwrap();
    let (status, body) = app.get(&path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"], "detector");
    assert_eq!(body["algorithm"], "classic");
    let judged = &body["minutes"][20];
    let threshold = domain::detection::threshold(
        &classic,
        1,
        &domain::Baseline {
            minutes: u32::try_from(30).unwrap(),
            mean: judged["baseline_mean"].as_f64().unwrap(),
            stddev: judged["baseline_stddev"].as_f64().unwrap(),
            total_mean: 0.0,
        },
    );
    assert_eq!(judged["threshold"].as_i64().unwrap(), threshold as i64);
}

#[tokio::test]
async fn a_series_refuses_spans_it_cannot_answer() {
    let app = spawn_app().await;
    for (query, why) in [
        (
            "since=2026-01-01T00:00:00Z&until=2026-01-03T00:00:00Z",
            "more than a day",
        ),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "backwards",
        ),
        ("since=yesterday", "not a time"),
        ("from=0", "unknown parameter"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/services/checkout/series?{query}"))
            .await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    // A service nobody has heard of: its minutes, all zero, none judged.
    let (status, body) = app.get("/api/v1/services/nobody/series").await;
    assert_eq!(status, 200, "{body}");
    let minutes = body["minutes"].as_array().unwrap();
    assert!((60..=61).contains(&minutes.len()), "{}", minutes.len());
    assert!(
        minutes
            .iter()
            .all(|point| point["errors"] == 0 && point["threshold"] == serde_json::Value::Null)
    );
    // Without a token: refused.
    let (status, _) = app
        .get_with(&reqwest::Client::new(), "/api/v1/services/checkout/series")
        .await;
    assert_eq!(status, 401);
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

#[tokio::test]
async fn patterns_group_a_services_lines_in_a_span() {
    let app = spawn_app().await;
    let minute = Minute::containing(Utc::now()).minus(3);
    let mut lines = Vec::new();
    let messages: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 | 1 => format!(
                "Timeout after {} ms calling db for user {}",
                100 + i,
                7000 + i
            ),
            2 => format!("GET /api/items/{i} 200 in {i} ms"),
            _ => "cache warmed".to_owned(),
        })
        .collect();
    for (i, message) in messages.iter().enumerate() {
        let level = if i % 4 < 2 { "error" } else { "info" };
        let at = minute.start() + Duration::seconds(i as i64);
        lines.push(("checkout", level, message.as_str(), at));
    }
    lines.push(("other", "error", "not checkout 1", minute.start()));
    app.logs(&lines).await;
    let since = minute.start().to_rfc3339();
    let until = minute.plus(1).start().to_rfc3339();
    let path = |extra: &str| {
        format!(
            "/api/v1/services/checkout/patterns?since={}&until={}{extra}",
            urlencode(&since),
            urlencode(&until)
        )
    };
    let (status, body) = app.get(&path("")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lines"], 40);
    assert_eq!(body["sampled"], 40);
    let patterns = body["patterns"].as_array().unwrap();
    let templates: Vec<(&str, i64)> = patterns
        .iter()
        .map(|p| {
            (
                p["template"].as_str().unwrap(),
                p["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        templates,
        [
            ("Timeout after <*> ms calling db for user <*>", 20),
            ("GET <*> <*> in <*> ms", 10),
            ("cache warmed", 10),
        ]
    );
    // Errors only.
    let (status, body) = app.get(&path("&level=error")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patterns"].as_array().unwrap().len(), 1);
    // An example id is a real line of the pattern.
    let example = body["patterns"][0]["example_log_id"].as_i64().unwrap();
    let (_, page) = app
        .get("/api/v1/logs?service=checkout&level=error&limit=500")
        .await;
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == example)
    );

    for (query, why) in [
        (
            "since=2026-01-01T00:00:00Z&until=2026-01-03T00:00:00Z",
            "more than a day",
        ),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "backwards",
        ),
        ("level=loud", "not a level"),
        ("limit=5", "unknown parameter"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/services/checkout/patterns?{query}"))
            .await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    // A name ingest would refuse is a 400, not an empty answer.
    let (status, body) = app.get("/api/v1/services/not%20a%20name/patterns").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.get("/api/v1/services/nobody/patterns").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patterns"].as_array().unwrap().len(), 0);
    let (status, _) = app
        .get_with(
            &reqwest::Client::new(),
            "/api/v1/services/checkout/patterns",
        )
        .await;
    assert_eq!(status, 401);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
