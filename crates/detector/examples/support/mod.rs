//! What the detector's benches share: running SQL on a scratch database, and summaries.

use std::time::Duration;

/// Runs `statement` (one or more, separated by `;`) against `url`.
pub async fn sql(url: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(statement).await.unwrap();
}

/// Median and p90.
pub fn summary(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() * 9 / 10])
}
