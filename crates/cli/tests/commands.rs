//! `threesigma user ...` and `threesigma token ...` as an operator runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use store::testing::TestDatabase;

fn threesigma(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_threesigma"));
    command
        .args(args)
        .env_remove("JWT_SECRET")
        .env_remove("JWT_SECRET_FILE")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_tokens_from_the_command_line() {
    let db = TestDatabase::create().await;
    let database = [("DATABASE_URL", db.url.as_str())];

    let added = threesigma(
        &[
            "user",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "operator",
        ],
        &database,
        "correct horse battery\n",
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stdout).contains("Added ops@example.com (operator)"));

    let again = threesigma(
        &[
            "user",
            "add",
            "--email",
            "OPS@example.com",
            "--role",
            "viewer",
        ],
        &database,
        "another long password\n",
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );

    let short = threesigma(
        &[
            "user",
            "add",
            "--email",
            "x@example.com",
            "--role",
            "viewer",
        ],
        &database,
        "short\n",
    );
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("at least 12 characters"));

    let listed = threesigma(&["user", "list"], &database, "");
    assert!(text(&listed.stdout).contains("ops@example.com\toperator"));
    assert!(!text(&listed.stdout).contains("argon2"));

    // Tokens need a signing key, and say so in one line.
    let refused = threesigma(
        &["token", "issue", "--scope", "ingest", "--subject", "vector"],
        &[],
        "",
    );
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(
        message.contains("auth.secret") && message.contains("JWT_SECRET"),
        "{message}"
    );

    let secret = [("JWT_SECRET", auth::testing::SECRET)];
    let issued = threesigma(
        &[
            "token",
            "issue",
            "--scope",
            "ingest",
            "--scope",
            "read",
            "--subject",
            "vector",
            "--ttl",
            "90d",
        ],
        &secret,
        "",
    );
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let token = text(&issued.stdout).trim().to_owned();
    let principal = auth::testing::settings()
        .verifier()
        .unwrap()
        .verify(&token)
        .unwrap();
    assert_eq!(principal.subject, "vector");
    assert!(principal.allows(auth::Scope::Ingest) && principal.allows(auth::Scope::Read));
    let days = (principal.expires_at - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{days}");
    // A token without a practical end is refused with a reason, never a panic.
    for ttl in ["367d", "100000000y"] {
        let refused = threesigma(
            &[
                "token",
                "issue",
                "--scope",
                "read",
                "--subject",
                "x",
                "--ttl",
                ttl,
            ],
            &secret,
            "",
        );
        let message = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{ttl}: {message}");
        assert!(message.contains("at most 366 days"), "{ttl}: {message}");
    }

    let revoked = threesigma(
        &["token", "revoke", &token, "--reason", "leaked"],
        &database,
        "",
    );
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let mut conn = {
        use diesel_async::AsyncConnection;
        diesel_async::AsyncPgConnection::establish(&db.url)
            .await
            .unwrap()
    };
    let ids = store::users::revoked_token_ids(&mut conn, chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(ids, [principal.jti]);
}
