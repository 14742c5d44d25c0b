//! The services overview.

use chrono::{Duration, Utc};
use domain::{Minute, Severity};

use crate::helpers::spawn_app;

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
