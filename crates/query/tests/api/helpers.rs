use auth::{Role, Scope};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use domain::{EventLimits, LogEvent, Severity};
use serde_json::{Value, json};
use store::incidents::Actor;
use store::models::NewIncident;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

/// A running query service on a random port with its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    /// Sends a read token.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

/// A client that sends `token` with every request.
pub fn client_with(token: &str) -> reqwest::Client {
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

pub fn token(subject: &str, scopes: &[Scope], role: Option<Role>) -> String {
    auth::testing::token(subject, scopes, role)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut query::Settings)) -> TestApp {
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
    /// GET with the read token: the status and the JSON body (null when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET with `client`: the status and the body as text.
    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let response = client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POST `body` as JSON with `client`: the status and the JSON body (null when not JSON).
    pub async fn post(&self, client: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        let response = client
            .post(format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn connection(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db.url).await.unwrap()
    }

    /// Opens an incident for `service` at `at` with the given severity; returns its id.
    pub async fn incident(&self, service: &str, at: DateTime<Utc>, severity: Severity) -> i64 {
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

    /// Stores log events `(service, level, message, at)` the way ingest does.
    pub async fn logs(&self, events: &[(&str, &str, &str, DateTime<Utc>)]) {
        let events: Vec<Value> = events
            .iter()
            .map(|(service, level, message, at)| {
                json!({"service": service, "level": level, "message": message, "ts": at.to_rfc3339()})
            })
            .collect();
        self.events(events).await;
    }

    /// Stores native-format events the way ingest does (terms and search marks included).
    pub async fn events(&self, events: Vec<Value>) {
        let limits = EventLimits {
            max_age: chrono::Duration::days(30),
            ..EventLimits::default()
        };
        let events: Vec<LogEvent> = events
            .into_iter()
            .map(|event| LogEvent::from_json(event, Utc::now(), &limits).unwrap())
            .collect();
        let config =
            store::pool::connection_config(&self.db.url, &store::PoolSettings::default()).unwrap();
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

    pub async fn add_user(&self, email: &str, password: &str, role: Role) {
        let mut conn = self.connection().await;
        let hash = auth::password::hash(password).unwrap();
        store::users::add(&mut conn, email, &hash, role.as_str())
            .await
            .unwrap()
            .unwrap();
    }

    pub async fn login(&self, email: &str, password: &str) -> (u16, Value) {
        self.post(
            &reqwest::Client::new(),
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }
}
