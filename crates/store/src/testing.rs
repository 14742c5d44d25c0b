#![allow(clippy::expect_used)]

//! A fresh database per test, cloned from a migrated template.
//!
//! The template is named after a hash of `migrations/` and the current UTC date (the
//! migration creates the daily log partitions around "today"), built once under an advisory
//! lock however many test processes start at once, and cloned with `CREATE DATABASE ...
//! TEMPLATE`, which takes milliseconds. Each [`TestDatabase`] drops its database when
//! dropped; databases of crashed runs are removed the next time a template is built.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use crate::migrate;
use crate::pool::with_database;

/// The server tests use: `DATABASE_URL` when set, else the local trust-auth server.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the fresh database.
    pub url: String,
    name: String,
    admin_url: String,
}

const PREFIX: &str = "threesigma_test_";
const TEMPLATE_PREFIX: &str = "threesigma_tpl_";

fn template_name() -> String {
    let mut hasher = DefaultHasher::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    for file in files {
        // Relative names: checkouts of the same migrations (worktrees, CI clones) share one
        // template instead of dropping each other's as stale.
        file.strip_prefix(&dir).unwrap_or(&file).hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    chrono::Utc::now().date_naive().hash(&mut hasher);
    format!("{TEMPLATE_PREFIX}{:016x}", hasher.finish())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let config = crate::pool::ConnectionConfig::parse(url)
        .unwrap_or_else(|error| panic!("DATABASE_URL {url}: {error}"));
    config
        .connect_raw()
        .await
        .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {url}: {error}"))
}

async fn ensure_template(admin_url: &str, template: &str) {
    let client = admin(admin_url).await;
    client
        .execute(
            "SELECT pg_advisory_lock(hashtext('threesigma_test_template'))",
            &[],
        )
        .await
        .expect("template lock");
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("look up template")
        .is_some();
    if !exists {
        // Leftovers: templates of other migration sets or days, and databases of crashed
        // runs that nobody is connected to.
        let stale = client
            .query(
                "SELECT datname FROM pg_database d WHERE (datname LIKE $1 OR datname LIKE $2) \
                 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
                &[&format!("{TEMPLATE_PREFIX}%"), &format!("{PREFIX}%")],
            )
            .await
            .expect("list stale databases");
        for row in stale {
            let name: String = row.get(0);
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await;
        }
        let building = format!("{template}_building");
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await
            .expect("drop half-built template");
        client
            .batch_execute(&format!("CREATE DATABASE \"{building}\""))
            .await
            .expect("create template database");
        migrate::run_pending(&with_database(admin_url, &building))
            .await
            .expect("migrate template database");
        rename_when_idle(&client, &building, template).await;
    }
    client
        .execute(
            "SELECT pg_advisory_unlock(hashtext('threesigma_test_template'))",
            &[],
        )
        .await
        .expect("template unlock");
}

/// Renames once the migration connection has really gone (its close is asynchronous).
async fn rename_when_idle(client: &tokio_postgres::Client, from: &str, to: &str) {
    let mut last_error = None;
    for _ in 0..100 {
        match client
            .batch_execute(&format!("ALTER DATABASE \"{from}\" RENAME TO \"{to}\""))
            .await
        {
            Ok(()) => return,
            Err(error) => {
                last_error = Some(error);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("cannot rename template database: {last_error:?}");
}

impl TestDatabase {
    /// Creates a fresh, migrated database.
    pub async fn create() -> TestDatabase {
        let admin_url = server_url();
        let template = template_name();
        ensure_template(&admin_url, &template).await;
        let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
        let client = admin(&admin_url).await;
        let mut last_error = None;
        for _ in 0..100 {
            match client
                .batch_execute(&format!(
                    "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                ))
                .await
            {
                Ok(()) => {
                    return TestDatabase {
                        url: with_database(&admin_url, &name),
                        name,
                        admin_url,
                    };
                }
                // Another session briefly connected to the template, or a run of other
                // migrations (or of another day) dropped it as stale: make it again.
                Err(error) => {
                    if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
                    {
                        ensure_template(&admin_url, &template).await;
                    }
                    last_error = Some(error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        panic!("cannot create test database: {last_error:?}");
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; do the blocking work on a thread of its own.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let config = crate::pool::ConnectionConfig::parse(&admin_url);
                let connected = match config {
                    Ok(config) => config.connect_raw().await.ok(),
                    Err(_) => None,
                };
                if let Some(client) = connected {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// A plausible incident for `service` opened at `at` (warning, error_count, classic
/// evidence), for tests to open with [`crate::incidents::open`]; change fields with struct
/// update syntax.
pub fn new_incident(
    service: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> crate::models::NewIncident<'_> {
    let minute = domain::Minute::containing(at).start();
    crate::models::NewIncident {
        service,
        signal: domain::Signal::ErrorCount,
        severity: domain::Severity::Warning,
        title: "errors up",
        opened_at: at,
        last_evaluated_at: at,
        first_minute: minute,
        last_fired_minute: minute,
        current_z: 4.0,
        peak_z: 4.0,
        current_count: 20,
        current_total: 200,
        peak_count: 20,
        p_value: None,
        baseline_mean: 2.0,
        baseline_stddev: 1.0,
        baseline_minutes: 30,
        baseline_total_mean: 40.0,
        algorithm: domain::detection::Algorithm::Classic,
        z_threshold: 3.0,
        min_count: 5,
        opening: Some(crate::models::OpeningEvidence {
            count: 20,
            z: 4.0,
            expected: Some(2.0),
            spread: Some(1.0),
            p_threshold: None,
            firing_count: Some(6),
            dispersion: None,
            rhythm_rise: None,
            late_by_minutes: None,
        }),
    }
}
