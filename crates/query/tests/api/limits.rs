//! Rate limits: per token, and the stricter one on login attempts.

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn rate_limits_refuse_the_excess_and_nothing_below() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.per_second = 2;
        settings.rate_limit.burst = 20;
    })
    .await;
    // Under the limit: the burst passes whole.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(app.get("/api/v1/incidents").await.0);
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Over it: 300 more as fast as possible; only the replenished few may pass.
    let started = std::time::Instant::now();
    let mut refused = 0;
    for _ in 0..300 {
        let response = app
            .client
            .get(format!("{}/api/v1/incidents", app.address))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused += 1;
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    let replenished = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    let excess = 300 - replenished.min(300);
    println!(
        "rate limit: {refused} of 300 requests beyond the burst refused; the rate replenished \
         at most {replenished} during the run, so at least {excess} were excess ({:.1}% of them refused)",
        100.0 * (refused.min(excess)) as f64 / excess as f64
    );
    assert!(
        refused as f64 >= 0.98 * excess as f64,
        "{refused} of {excess}"
    );
}

#[tokio::test]
async fn login_attempts_have_their_own_stricter_limit() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.login_per_minute = 6;
        settings.rate_limit.login_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            app.login("nobody@example.com", "correct horse battery")
                .await
                .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
}

/// An unauthenticated login whose body stalls after a few bytes held its connection for
/// as long as the client liked (138 of them from loopback addresses starved /healthz). It
/// now gets 408 and a closed connection after `server.body_idle_timeout`.
#[tokio::test]
async fn a_stalled_login_gets_408_and_its_connection_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = crate::helpers::spawn_app_with(|settings| {
        settings.server.body_idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the connection was not closed")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
