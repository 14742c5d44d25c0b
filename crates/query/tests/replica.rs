//! `DATABASE_READ_URL`: the query API reads lists and details from a streaming replica and
//! writes to the primary. A private primary and a real replica of it (initdb, then
//! pg_basebackup -R, each on its own port under a temporary directory) are set up here with
//! the local PostgreSQL binaries; replay on the replica is paused to prove which database
//! answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth::{Role, Scope};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use runtime::testing::free_port;
use serde_json::Value;
use store::cluster::PrivateCluster;
use store::incidents::Actor;
use tokio_util::sync::CancellationToken;

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Waits until the replica has replayed everything the primary has written so far.
async fn caught_up(primary: &tokio_postgres::Client, replica: &tokio_postgres::Client) {
    let lsn: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    for _ in 0..400 {
        let replayed: bool = replica
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .await
            .unwrap()
            .get(0);
        if replayed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replica did not replay {lsn} within 20 s");
}

async fn open_incident(url: &str, service: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let new = store::testing::new_incident(service, Utc::now());
    let actor = Actor {
        name: "detector",
        reason: "test",
    };
    store::incidents::open(&mut conn, &new, actor)
        .await
        .unwrap()
        .unwrap()
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn authorized(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_come_from_the_replica_and_writes_go_to_the_primary() {
    runtime::telemetry::init_for_tests();
    let dir = std::env::temp_dir().join(format!("threesigma-replica-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (primary_port, replica_port) = (free_port(), free_port());
    let primary = PrivateCluster::start(&dir.join("primary"), primary_port).unwrap();
    let primary_url = format!("postgres://postgres@127.0.0.1:{primary_port}/postgres");
    store::migrate::run_pending(&primary_url).await.unwrap();
    let replica =
        PrivateCluster::start_replica(&dir.join("replica"), primary_port, replica_port).unwrap();
    let replica_url = format!("postgres://postgres@127.0.0.1:{replica_port}/postgres");
    let primary_sql = client(&primary_url).await;
    let replica_sql = client(&replica_url).await;
    let in_recovery: bool = replica_sql
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the second cluster is a standby");

    let mut settings = query::Settings::default();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.server.workers = 1;
    settings.database.url = primary_url.clone().into();
    settings.database.pool_size = 2;
    settings.query.read_url = replica_url.clone().into();
    settings.auth = auth::testing::settings();
    settings.rate_limit.per_second = 0;
    let app = query::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until(shutdown.clone()));
    let reader = authorized(&auth::testing::token("reader", &[Scope::Read], None));
    let operator = authorized(&auth::testing::token(
        "ana",
        &[Scope::Read],
        Some(Role::Operator),
    ));

    let first = open_incident(&primary_url, "checkout").await;
    caught_up(&primary_sql, &replica_sql).await;
    let (status, page) = get(&reader, format!("{base}/api/v1/incidents")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], first);

    // Freeze the replica: what the API lists now is what the replica has, not the primary.
    replica_sql
        .execute("SELECT pg_wal_replay_pause()", &[])
        .await
        .unwrap();
    let second = open_incident(&primary_url, "billing").await;
    let (_, page) = get(&reader, format!("{base}/api/v1/incidents")).await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        1,
        "listed from the paused replica: {page}"
    );
    let (status, _) = get(&reader, format!("{base}/api/v1/incidents/{second}")).await;
    assert_eq!(
        status, 404,
        "the replica has not seen the second incident yet"
    );

    // Writes go to the primary (the replica is read-only and does not have the incident).
    let response = operator
        .post(format!("{base}/api/v1/incidents/{second}/acknowledge"))
        .json(&serde_json::json!({"reason": "looking"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let status: String = primary_sql
        .query_one("SELECT status FROM incidents WHERE id = $1", &[&second])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "acknowledged");

    // Replay resumes: the replica catches up and the API shows both, acknowledged.
    replica_sql
        .execute("SELECT pg_wal_replay_resume()", &[])
        .await
        .unwrap();
    caught_up(&primary_sql, &replica_sql).await;
    let (_, page) = get(&reader, format!("{base}/api/v1/incidents")).await;
    let ids: Vec<i64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [second, first]);
    assert_eq!(page["data"][0]["status"], "acknowledged");

    // Readiness covers both databases and names the one that is down.
    let http = reqwest::Client::new();
    assert_eq!(get(&http, format!("{base}/readyz")).await.0, 200);
    drop(replica_sql);
    replica.stop().unwrap();
    let (status, body) = get(&http, format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("read database"), "{reasons}");
    assert!(
        !reasons.contains("\"database:"),
        "the primary is fine: {reasons}"
    );

    shutdown.cancel();
    drop(primary_sql);
    primary.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
