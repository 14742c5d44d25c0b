//! `threesigma up` on a machine without a reachable server starts a private cluster with
//! the local PostgreSQL binaries: this starts one in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cli::postgres::PrivateCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_cluster_starts_serves_and_stops() {
    let dir = std::env::temp_dir().join(format!("threesigma-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = runtime::testing::free_port();
    let cluster = PrivateCluster::start(&dir, port).unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    // Starting again finds it running and reuses it.
    let again = PrivateCluster::start(&dir, port).unwrap();
    drop(client);
    again.stop().unwrap();
    assert!(cluster.stop().is_err(), "already stopped");
    let _ = std::fs::remove_dir_all(&dir);
}
