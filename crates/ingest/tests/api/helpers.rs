use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ingest::Settings;
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

/// A running ingest service on a random port with its own database.
pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for tests: small pools, quick batches.
pub fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.server.workers = 1;
    settings.database.url = db.url.clone().into();
    settings.database.pool_size = 2;
    settings.ingest.writers = 2;
    settings.ingest.linger = Duration::from_millis(5);
    settings.auth = auth::testing::settings();
    settings.auth.revocation_refresh = Duration::from_millis(100);
    settings
}

/// A token allowed to send logs.
pub fn ingest_token() -> String {
    auth::testing::token("test-shipper", &[auth::Scope::Ingest], None)
}

/// A client that sends `token` with every request.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    runtime::telemetry::init_for_tests();
    let db = TestDatabase::create().await;
    let mut settings = test_settings(&db);
    customise(&mut settings);
    let app = ingest::Application::build(settings)
        .await
        .expect("build ingest");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until(shutdown.clone()));
    TestApp {
        address,
        db,
        client: client_with(&ingest_token()),
        shutdown,
        task: Some(task),
    }
}

impl TestApp {
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_logs(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post("/api/v1/logs", "application/json", body.to_string())
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    pub async fn connection(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db.url)
            .await
            .expect("connect")
    }

    /// Stored log messages, sorted.
    pub async fn stored_messages(&self) -> Vec<String> {
        use store::schema::logs::dsl::*;
        let mut conn = self.connection().await;
        logs.select(message)
            .order(message)
            .load(&mut conn)
            .await
            .expect("load logs")
    }

    /// Stored events as (service, level name, message), sorted by message.
    pub async fn stored_events(&self) -> Vec<(String, String, String)> {
        use store::schema::logs::dsl::*;
        let mut conn = self.connection().await;
        let rows: Vec<(String, i16, String)> = logs
            .select((service, level, message))
            .order(message)
            .load(&mut conn)
            .await
            .expect("load logs");
        rows.into_iter()
            .map(|(name, number, text)| {
                let level_name = domain::Level::from_i16(number).map_or("?", domain::Level::as_str);
                (name, level_name.to_owned(), text)
            })
            .collect()
    }

    /// Stops the service the way SIGTERM does and waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.expect("ingest task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A TCP proxy in front of PostgreSQL that can swallow the server's answers (the request
/// reaches the server and runs; its answer never comes back) and cut every connection:
/// the ambiguous commit of a primary that dies, made on demand.
pub struct ReplyProxy {
    pub port: u16,
    mute: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl ReplyProxy {
    /// Listens on a free port and forwards to the host and port of `url`.
    pub async fn start(url: &str) -> ReplyProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let config: tokio_postgres::Config = url.parse().expect("database URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = format!("{host}:{port}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let mute = std::sync::Arc::new(AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        let muted = mute.clone();
        let refuse = std::sync::Arc::new(AtomicBool::new(false));
        let refusing = refuse.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if AtomicBool::load(&refusing, Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let mut cut = cuts.subscribe();
                let muted = muted.clone();
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let up = tokio::io::copy(&mut client_read, &mut server_write);
                    let down = async {
                        let mut buffer = vec![0u8; 16 * 1024];
                        loop {
                            let read = server_read.read(&mut buffer).await?;
                            if read == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            if !AtomicBool::load(&muted, Ordering::SeqCst) {
                                client_write.write_all(&buffer[..read]).await?;
                            }
                        }
                    };
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        ReplyProxy {
            port: local,
            mute,
            refuse,
            cut,
        }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let config: tokio_postgres::Config = url.parse().expect("database URL");
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|password| format!(":{}", String::from_utf8_lossy(password)))
            .unwrap_or_default();
        let database = config.get_dbname().unwrap_or("postgres");
        format!(
            "postgres://{user}{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Swallows (true) or forwards (false) what the server sends from now on.
    pub fn mute(&self, muted: bool) {
        self.mute.store(muted, std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes new connections at once (true), as a database that is down, or forwards them.
    pub fn refuse(&self, refused: bool) {
        self.refuse
            .store(refused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}
