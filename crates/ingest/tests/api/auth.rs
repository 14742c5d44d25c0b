use std::time::Duration;

use auth::Scope;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};

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
    assert!(body["message"].as_str().unwrap().contains("missing token"));

    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/logs", app.address))
        .header("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .json(&json!({"service": "a", "message": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "malformed header");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    for (case, token) in auth::testing::forged_tokens() {
        let (status, body) = post_with(&app, &client_with(&token)).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"], "unauthorized", "{case}");
    }
    assert!(app.stored_messages().await.is_empty());
}

#[tokio::test]
async fn a_read_token_cannot_send_logs() {
    let app = spawn_app().await;
    let reader = auth::testing::token("dashboard", &[Scope::Read], None);
    let (status, body) = post_with(&app, &client_with(&reader)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("ingest scope"));
    let admin = auth::testing::token("root", &[Scope::Admin], None);
    assert_eq!(post_with(&app, &client_with(&admin)).await.0, 200);
}

#[tokio::test]
async fn revoked_tokens_are_refused_within_seconds() {
    let app = spawn_app().await;
    let token = auth::testing::token("leaky-shipper", &[Scope::Ingest], None);
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
    // Never "retry after 0 s": exporters would retry in a tight loop.
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    assert!(limited.headers().contains_key("x-ratelimit-limit"));
    assert!(limited.headers().contains_key("x-ratelimit-after"));
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"],
        "rate_limited"
    );

    // Another token has its own budget.
    let other = client_with(&auth::testing::token(
        "other-shipper",
        &[Scope::Ingest],
        None,
    ));
    assert_eq!(post_with(&app, &other).await.0, 200);
}

fn fixture(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/keys")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test]
async fn with_a_key_pair_ingest_holds_only_the_public_key() {
    use auth::{AuthSettings, JwtAlgorithm};
    let app = spawn_app_with(|settings| {
        settings.auth = AuthSettings {
            algorithm: JwtAlgorithm::EdDSA,
            public_key_file: fixture("ed25519-public.pem"),
            ..AuthSettings::default()
        };
    })
    .await;
    // Tokens are made where the private key is (the CLI).
    let minting = AuthSettings {
        algorithm: JwtAlgorithm::EdDSA,
        private_key_file: fixture("ed25519-private.pem"),
        ..AuthSettings::default()
    };
    let signer = minting.signer().unwrap().unwrap();
    let good = signer
        .issue("vector", &[Scope::Ingest], None, Duration::from_secs(60))
        .unwrap();
    assert_eq!(post_with(&app, &client_with(&good.token)).await.0, 200);

    // Signed by another key pair: refused.
    let stranger = AuthSettings {
        algorithm: JwtAlgorithm::EdDSA,
        private_key_file: fixture("other-ed25519-private.pem"),
        ..AuthSettings::default()
    };
    let forged = stranger
        .signer()
        .unwrap()
        .unwrap()
        .issue("vector", &[Scope::Ingest], None, Duration::from_secs(60))
        .unwrap();
    assert_eq!(post_with(&app, &client_with(&forged.token)).await.0, 401);

    // Algorithm confusion: HS256 keyed with the (public) PEM itself. Refused.
    let confused = AuthSettings {
        secret: std::fs::read_to_string(fixture("ed25519-public.pem"))
            .unwrap()
            .into(),
        ..AuthSettings::default()
    };
    let confused = confused
        .signer()
        .unwrap()
        .unwrap()
        .issue("vector", &[Scope::Ingest], None, Duration::from_secs(60))
        .unwrap();
    let (status, body) = post_with(&app, &client_with(&confused.token)).await;
    assert_eq!(status, 401, "{body}");

    // The forged set is made for an HS256 service: here every one of them is refused too,
    // except the EdDSA token signed with this very key pair, which is simply valid.
    for (case, token) in auth::testing::forged_tokens() {
        let expected = if case == "wrong algorithm" { 200 } else { 401 };
        assert_eq!(
            post_with(&app, &client_with(&token)).await.0,
            expected,
            "{case}"
        );
    }
}
