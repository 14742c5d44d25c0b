//! List endpoints cost a fixed number of SQL statements per page, whatever the page size
//! and however deep the page: no N+1. Every statement the service runs is recorded through
//! diesel's instrumentation (a test binary of its own, since the recorder is global).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use auth::Scope;
use chrono::{Duration, Utc};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use domain::Minute;
use store::incidents::Actor;
use store::models::NewIncident;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Recorder;

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            STATEMENTS.lock().unwrap().push(query.to_string());
        }
    }
}

/// Statements touching incidents or logs since the last call (pool checks are `SELECT 1`).
fn data_statements() -> Vec<String> {
    std::mem::take(&mut *STATEMENTS.lock().unwrap())
        .into_iter()
        .filter(|statement| statement.contains("\"incidents\"") || statement.contains("\"logs\""))
        .collect()
}

#[tokio::test]
async fn pages_cost_a_fixed_number_of_statements() {
    diesel::connection::set_default_instrumentation(|| Some(Box::new(Recorder))).unwrap();
    let db = TestDatabase::create().await;
    let mut settings = query::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.server.workers = 1;
    settings.database.url = db.url.clone().into();
    settings.database.pool_size = 1;
    settings.auth = auth::testing::settings();
    let app = query::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));

    let pool = store::pool::build_pool(&db.url, &store::PoolSettings::default()).unwrap();
    let mut conn = store::pool::connection(&pool).await.unwrap();
    let now = Utc::now();
    let mut last = 0;
    for i in 0..120 {
        let service = format!("svc-{i}");
        let minute = Minute::containing(now).start();
        let new = NewIncident {
            opened_at: now - Duration::seconds(i),
            last_evaluated_at: now,
            first_minute: minute - Duration::minutes(5),
            last_fired_minute: minute,
            current_total: 40,
            baseline_total_mean: 4.0,
            algorithm: domain::detection::Algorithm::NegativeBinomial,
            ..store::testing::new_incident(&service, now)
        };
        last = store::incidents::open(
            &mut conn,
            &new,
            Actor {
                name: "test",
                reason: "",
            },
        )
        .await
        .unwrap()
        .unwrap();
    }
    drop(conn);

    let token = auth::testing::token("reader", &[Scope::Read], None);
    let client = reqwest::Client::new();
    let get = |path: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    data_statements();
    for limit in [1, 50, 500] {
        let page = get(format!("/api/v1/incidents?limit={limit}")).await;
        assert_eq!(data_statements().len(), 1, "incidents, limit {limit}");
        let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
        if !cursor.is_empty() {
            get(format!("/api/v1/incidents?limit={limit}&cursor={cursor}")).await;
            assert_eq!(
                data_statements().len(),
                1,
                "incidents, second page, limit {limit}"
            );
        }
        get(format!("/api/v1/logs?limit={limit}")).await;
        assert_eq!(data_statements().len(), 1, "logs, limit {limit}");
        // The incident's logs: one statement for its window, one for the page.
        get(format!("/api/v1/incidents/{last}/logs?limit={limit}")).await;
        assert_eq!(data_statements().len(), 2, "incident logs, limit {limit}");
    }
    shutdown.cancel();
}
