//! Tokens, revocation, login, public-key-only verification, and no password hash in any
//! answer.

use auth::{Role, Scope};
use chrono::Utc;
use domain::Severity;
use serde_json::json;

use crate::helpers::{client_with, spawn_app, spawn_app_with, token};

#[tokio::test]
async fn every_bad_token_is_refused() {
    let app = spawn_app().await;
    let (status, _) = app
        .get_with(&reqwest::Client::new(), "/api/v1/incidents")
        .await;
    assert_eq!(status, 401, "missing");
    for (case, forged) in auth::testing::forged_tokens() {
        let (status, body) = app
            .get_with(&client_with(&forged), "/api/v1/incidents")
            .await;
        assert_eq!(status, 401, "{case}: {body}");
    }
    let shipper = client_with(&token("shipper", &[Scope::Ingest], None));
    let (status, body) = app.get_with(&shipper, "/api/v1/logs").await;
    assert_eq!(status, 403, "an ingest token cannot read: {body}");
}

#[tokio::test]
async fn revoked_tokens_stop_working_within_seconds() {
    let app = spawn_app().await;
    let issued = auth::testing::settings()
        .signer()
        .unwrap()
        .unwrap()
        .issue(
            "reader",
            &[Scope::Read],
            None,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let client = client_with(&issued.token);
    assert_eq!(app.get_with(&client, "/api/v1/incidents").await.0, 200);
    let mut conn = app.connection().await;
    store::users::revoke_token(&mut conn, &issued.jti, issued.expires_at, "test")
        .await
        .unwrap();
    let mut status = 200;
    for _ in 0..100 {
        status = app.get_with(&client, "/api/v1/incidents").await.0;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401);
}

#[tokio::test]
async fn login_gives_a_token_with_the_users_role() {
    let app = spawn_app().await;
    app.add_user("Alice@Example.com", "correct horse battery", Role::Operator)
        .await;
    let (status, body) = app.login("alice@example.com", "wrong horse battery").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("wrong email or password"))
    );
    let (status, unknown) = app
        .login("nobody@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        unknown["message"], body["message"],
        "unknown emails look like wrong passwords"
    );
    let (status, body) = app
        .login("alice@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "operator");
    let session = client_with(body["token"].as_str().unwrap());
    assert_eq!(app.get_with(&session, "/api/v1/incidents").await.0, 200);
}

#[tokio::test]
async fn with_only_a_public_key_reads_work_and_login_is_disabled() {
    use auth::{AuthSettings, JwtAlgorithm};
    let key = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/keys")
            .join(name)
            .display()
            .to_string()
    };
    let app = spawn_app_with(|settings| {
        settings.auth = AuthSettings {
            algorithm: JwtAlgorithm::RS256,
            public_key_file: key("rsa-public.pem"),
            ..AuthSettings::default()
        };
    })
    .await;
    let minting = AuthSettings {
        algorithm: JwtAlgorithm::RS256,
        private_key_file: key("rsa-private.pem"),
        ..AuthSettings::default()
    };
    let issued = minting
        .signer()
        .unwrap()
        .unwrap()
        .issue(
            "grafana",
            &[Scope::Read],
            None,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        app.get_with(&client_with(&issued.token), "/api/v1/incidents")
            .await
            .0,
        200
    );
    // An HS256 token (the test secret) is the wrong algorithm here.
    assert_eq!(app.get_with(&app.client, "/api/v1/incidents").await.0, 401);
    let (status, body) = app
        .login("anyone@example.com", "correct horse battery")
        .await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn no_answer_ever_carries_a_password_hash() {
    let app = spawn_app().await;
    app.add_user("root@example.com", "correct horse battery", Role::Admin)
        .await;
    let (_, login) = app.login("root@example.com", "correct horse battery").await;
    let admin = client_with(login["token"].as_str().unwrap());
    let id = app
        .incident("checkout", Utc::now(), Severity::Warning)
        .await;
    app.logs(&[("checkout", "error", "boom", Utc::now())]).await;
    let mut bodies = vec![login.to_string()];
    for path in [
        "/api/v1/incidents".to_owned(),
        format!("/api/v1/incidents/{id}"),
        format!("/api/v1/incidents/{id}/logs"),
        "/api/v1/logs".to_owned(),
        "/api/v1/services".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/metrics".to_owned(),
    ] {
        let (status, body) = app.get_with(&admin, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        bodies.push(body);
    }
    for action in ["acknowledge", "resolve"] {
        let (_, body) = app
            .post(
                &admin,
                &format!("/api/v1/incidents/{id}/{action}"),
                json!({}),
            )
            .await;
        bodies.push(body.to_string());
    }
    for body in bodies {
        assert!(!body.contains("$argon2"), "{body}");
        assert!(!body.contains("password_hash"), "{body}");
    }
}
