//! Incident explanations against a real PostgreSQL: computed by the tick that opens the
//! incident (after it commits), once per stage, carried by the webhook, and right: a burst
//! made of a new message from one host names that message and that host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::{EventLimits, LogEvent, Minute};
use serde_json::{Value, json};
use store::schema::{incident_explanations, incidents};
use store::testing::TestDatabase;

fn event(
    service: &str,
    level: &str,
    message: String,
    attributes: Value,
    at: DateTime<Utc>,
) -> LogEvent {
    let limits = EventLimits {
        max_age: Duration::days(3650),
        ..EventLimits::default()
    };
    LogEvent::from_json(
        json!({"service": service, "level": level, "message": message, "ts": at.to_rfc3339(), "attributes": attributes}),
        at,
        &limits,
    )
    .unwrap()
}

async fn write(db: &TestDatabase, events: &[LogEvent]) {
    let config = store::pool::connection_config(&db.url, &store::PoolSettings::default()).unwrap();
    let mut client = store::bulk::BulkConnection::connect(&config).await.unwrap();
    client
        .write_new_batch(
            &events.iter().collect::<Vec<_>>(),
            0,
            store::bulk::BulkMethod::Copy,
        )
        .await
        .unwrap();
}

/// One minute of checkout's steady traffic: three known errors (numbers and ids varying)
/// spread over three hosts, and info lines.
fn steady(minute: Minute, salt: u64) -> Vec<LogEvent> {
    let mut events = Vec::new();
    for i in 0..(3 + salt % 2) {
        let at = minute.start() + Duration::seconds(5 + 10 * i as i64);
        let n = salt * 10 + i;
        let (message, host) = match n % 3 {
            0 => (
                format!(
                    "Timeout after {} ms calling inventory for sku {}",
                    200 + n,
                    10_000 + n
                ),
                "web-1",
            ),
            1 => (
                format!("Connection reset by peer 10.2.{}.{}:5432", n % 9, n % 200),
                "web-2",
            ),
            _ => (
                format!("Cache miss for key cart:{} after {} retries", n * 31, n % 4),
                "web-3",
            ),
        };
        events.push(event(
            "checkout",
            "error",
            message,
            json!({"host": host, "region": "eu-west-1"}),
            at,
        ));
    }
    for i in 0..20 {
        let at = minute.start() + Duration::seconds(2 + i);
        events.push(event(
            "checkout",
            "info",
            format!("GET /cart/{i} 200"),
            json!({"host": "web-1"}),
            at,
        ));
    }
    events
}

/// The burst: 80 lines of a message never seen before, all from web-9, each with its own
/// order id and amount.
fn burst(minute: Minute) -> Vec<LogEvent> {
    (0..80)
        .map(|i| {
            let at = minute.start() + Duration::milliseconds(500 * i);
            event(
                "checkout",
                "error",
                format!(
                    "PaymentGateway declined order ord-{:08x} amount {}.{:02} EUR: upstream 502",
                    0x5eed_0000 + i * 7919,
                    10 + i,
                    i % 100
                ),
                json!({"host": "web-9", "region": "eu-west-1", "version": "4.2.0"}),
                at,
            )
        })
        .collect()
}

/// A webhook receiver on 127.0.0.1 that keeps every body it gets.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>, actix_web::dev::ServerHandle) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let sink = received.clone();
    let server = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/hook",
            web::post().to(move |body: web::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(body.into_inner());
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, received, handle)
}

fn settings(db: &TestDatabase) -> detector::Settings {
    let mut settings = detector::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = db.url.clone().into();
    settings.database.pool_size = 2;
    settings
}

async fn explanation_rows(db: &TestDatabase) -> Vec<(i64, String, i32, Value)> {
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    incident_explanations::table
        .select((
            incident_explanations::incident_id,
            incident_explanations::severity,
            incident_explanations::reopened,
            incident_explanations::body,
        ))
        .order((
            incident_explanations::incident_id,
            incident_explanations::computed_at,
        ))
        .load(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_a_new_message_from_one_host_is_explained_once_per_stage() {
    let db = TestDatabase::create().await;
    let burst_minute = Minute::containing(Utc::now()).minus(5);
    let mut history = Vec::new();
    for back in 1..=45u64 {
        history.extend(steady(burst_minute.minus(back as i64), back));
    }
    write(&db, &history).await;
    let mut now_minute = steady(burst_minute, 0);
    now_minute.extend(burst(burst_minute));
    write(&db, &now_minute).await;

    let (url, received, handle) = receiver();
    let mut hooked = settings(&db);
    hooked.webhook.url = url.into();
    let app = detector::Application::build(hooked).await.unwrap();
    let tick_at = burst_minute.start() + Duration::seconds(70);
    let report = app.detector().tick(tick_at).await.unwrap();
    assert_eq!(report.opened, 1, "{report:?}");

    // Stored by the same tick, after the open.
    let rows = explanation_rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (id, severity, reopened, body) = &rows[0];
    // A burst this strong opens critical.
    assert_eq!((severity.as_str(), *reopened), ("critical", 0));
    let patterns = body["patterns"].as_array().unwrap();
    let first = &patterns[0];
    assert_eq!(
        first["template"],
        "PaymentGateway declined order <*> amount <*> EUR: upstream <*>"
    );
    assert_eq!(first["new"], true);
    assert_eq!(first["over_represented"], true);
    assert_eq!(first["window_count"], 80);
    // Order ids and amounts did not split it; the steady errors are one template each.
    let gateway = patterns
        .iter()
        .filter(|p| p["template"].as_str().unwrap().contains("PaymentGateway"))
        .count();
    assert_eq!(gateway, 1, "{patterns:?}");
    assert!(
        patterns[1..].iter().all(|p| p["new"] == false),
        "{patterns:?}"
    );
    let attributes = body["attributes"].as_array().unwrap();
    assert_eq!(
        (
            attributes[0]["key"].as_str(),
            attributes[0]["value"].as_str()
        ),
        (Some("host"), Some("web-9"))
    );
    // eu-west-1 is on every line of both sides.
    assert!(
        attributes.iter().all(|a| a["key"] != "region"),
        "{attributes:?}"
    );

    // The webhook carries the top three.
    for _ in 0..200 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let bodies = received.lock().unwrap().clone();
    let opened = bodies
        .iter()
        .find(|b| b["event"] == "opened")
        .expect("an opened notification");
    assert_eq!(opened["incident"]["id"], *id);
    let digest = &opened["explanation"];
    assert_eq!(digest["patterns"][0]["template"], first["template"]);
    assert!(digest["patterns"].as_array().unwrap().len() <= 3);
    assert_eq!(digest["attributes"][0]["value"], "web-9");
    handle.stop(false).await;

    // Ticks after it, of this detector and of another, compute nothing new ...
    app.detector()
        .tick(tick_at + Duration::seconds(10))
        .await
        .unwrap();
    app.detector()
        .unshared()
        .tick(tick_at + Duration::seconds(20))
        .await
        .unwrap();
    assert_eq!(explanation_rows(&db).await.len(), 1);

    // ... until the stage changes (as a reopen does): it gets its own explanation, once,
    // however many detectors tick.
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    diesel::update(incidents::table.find(*id))
        .set(incidents::reopened_count.eq(1))
        .execute(&mut conn)
        .await
        .unwrap();
    let (a, b) = (app.detector(), app.detector().unshared());
    let later = tick_at + Duration::seconds(30);
    let (first_tick, second_tick) = tokio::join!(a.tick(later), b.tick(later));
    first_tick.unwrap();
    second_tick.unwrap();
    let rows = explanation_rows(&db).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].2, 1);

    // A lost explanation (a failed attempt leaves none) is computed again on the next tick.
    diesel::delete(incident_explanations::table)
        .execute(&mut conn)
        .await
        .unwrap();
    app.detector()
        .tick(later + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(explanation_rows(&db).await.len(), 1);
}

#[tokio::test]
async fn explanations_can_be_turned_off() {
    let db = TestDatabase::create().await;
    let burst_minute = Minute::containing(Utc::now()).minus(5);
    let mut events = Vec::new();
    for back in 1..=45u64 {
        events.extend(steady(burst_minute.minus(back as i64), back));
    }
    events.extend(burst(burst_minute));
    write(&db, &events).await;
    let mut off = settings(&db);
    off.explain.enabled = false;
    let app = detector::Application::build(off).await.unwrap();
    let report = app
        .detector()
        .tick(burst_minute.start() + Duration::seconds(70))
        .await
        .unwrap();
    assert_eq!(report.opened, 1);
    assert!(explanation_rows(&db).await.is_empty());
}
