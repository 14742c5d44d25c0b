//! Attacks from the security review (issue 10), replayed against the real server.

use reqwest::Method;

use crate::helpers::spawn_app;

/// `/healthz` and `/metrics` answer anyone. Made-up request methods used to become metric
/// label values, each a series kept forever: 3,000 of them grew /metrics from 6 KB to 6 MB,
/// and 100 KB methods took RSS to 600 MB. Every label is now from a fixed set.
#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let attack = |round: usize| {
        let client = client.clone();
        let address = app.address.clone();
        async move {
            for i in 0..150 {
                let method = if i % 50 == 0 {
                    format!("{round}{}", "M".repeat(10_000))
                } else {
                    format!("BOGUS{round}X{i}")
                };
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                for path in ["/healthz", "/metrics", "/no/such/path"] {
                    client
                        .request(method.clone(), format!("{address}{path}"))
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    };
    attack(1).await;
    app.get("/metrics").await;
    let before = app
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .lines()
        .count();
    attack(2).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("BOGUS"),
        "a client's method became a label"
    );
    assert!(
        metrics.contains(r#"method="other""#),
        "made-up methods are counted as other: {metrics}"
    );
    // A second round of new methods adds no series (only counts change).
    assert_eq!(metrics.lines().count(), before, "{metrics}");
    assert!(metrics.len() < 32_000, "{} bytes", metrics.len());
}
