use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};
use web::auth::Scope;

use crate::helpers::{client_with, spawn_app, spawn_app_with};

async fn post_with(app: &crate::helpers::TestApp, client: &reqwest::Client) -> (u16, Value) {
    let response = client
        .post(format!("{}/api/v1/logs", app.address))
        .json(&json!({"service": "a", "message": "m"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_bad_token_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (status, body) = post_with(&app, &reqwest::Client::new()).await;
    assert_eq!(status, 401, "missing: {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("missing bearer token")
    );

    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/logs", app.address))
        .header("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .json(&json!({"service": "a", "message": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "malformed header");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    for (case, token) in web::auth::forged::tokens() {
        let (status, body) = post_with(&app, &client_with(&token)).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"], "unauthorized", "{case}");
    }
    assert!(app.stored_messages().await.is_empty());
}

#[tokio::test]
async fn a_read_token_cannot_send_logs() {
    let app = spawn_app().await;
    let reader = web::auth::testing::token("dashboard", &[Scope::Read], None);
    let (status, body) = post_with(&app, &client_with(&reader)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("ingest scope"));
    let admin = web::auth::testing::token("root", &[Scope::Admin], None);
    assert_eq!(post_with(&app, &client_with(&admin)).await.0, 200);
}

#[tokio::test]
async fn revoked_tokens_are_refused_within_seconds() {
    let app = spawn_app().await;
    let token = web::auth::testing::token("leaky-shipper", &[Scope::Ingest], None);
    let client = client_with(&token);
    assert_eq!(post_with(&app, &client).await.0, 200);

    let (jti, expires_at) = cli_like_revocation_target(&token);
    let mut conn = AsyncPgConnection::establish(&app.db.url).await.unwrap();
    store::users::revoke_token(&mut conn, &jti, expires_at, "leaked")
        .await
        .unwrap();
    let mut status = 200;
    for _ in 0..100 {
        status = post_with(&app, &client).await.0;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401);
}

/// The jti and expiry of a token, read from its claims.
fn cli_like_revocation_target(token: &str) -> (String, chrono::DateTime<chrono::Utc>) {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let exp = chrono::DateTime::from_timestamp(claims["exp"].as_i64().unwrap(), 0).unwrap();
    (claims["jti"].as_str().unwrap().to_owned(), exp)
}

#[tokio::test]
async fn rate_limits_key_on_the_token_and_answer_429_with_headers() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.per_second = 1;
        settings.rate_limit.burst = 5;
    })
    .await;
    let client = app.client.clone();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..15 {
        let response = client
            .post(format!("{}/api/v1/logs", app.address))
            .json(&json!({"service": "a", "message": "m"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 && limited.is_none() {
            limited = Some(response);
        }
    }
    // A burst of 5 passes; nearly all of the excess is refused (one more may be let through
    // if a second ticks by during the loop).
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 9, "{statuses:?}");
    let limited = limited.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.headers().contains_key("x-ratelimit-limit"));
    assert!(limited.headers().contains_key("x-ratelimit-after"));
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"],
        "rate_limited"
    );

    // Another token has its own budget.
    let other = client_with(&web::auth::testing::token(
        "other-shipper",
        &[Scope::Ingest],
        None,
    ));
    assert_eq!(post_with(&app, &other).await.0, 200);
}
