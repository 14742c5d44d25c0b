//! A service with a missing or unsafe setting refuses to start, with one line naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn start(env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_threesigma-ingest"));
    command
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env_remove("JWT_SECRET_FILE")
        .env("RUST_LOG", "off");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

#[test]
fn missing_or_unsafe_settings_are_named_in_one_line() {
    let (ok, message) = start(&[("JWT_SECRET", auth::testing::SECRET)]);
    assert!(!ok);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("database.url") && message.contains("DATABASE_URL"),
        "{message}"
    );

    let url = store::testing::server_url();
    let (ok, message) = start(&[("DATABASE_URL", &url), ("JWT_SECRET", "too-short")]);
    assert!(!ok);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("auth.secret") && message.contains("32 bytes"),
        "{message}"
    );

    let dir = std::env::temp_dir().join(format!("threesigma-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwt");
    std::fs::write(&file, "short\n").unwrap();
    let (ok, message) = start(&[
        ("DATABASE_URL", &url),
        ("JWT_SECRET_FILE", file.to_str().unwrap()),
    ]);
    assert!(!ok, "JWT_SECRET_FILE is read too");
    assert!(message.contains("auth.secret"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);

    // Lists come from the environment comma-separated: the second entry is judged alone.
    let (ok, message) = start(&[
        ("DATABASE_URL", &url),
        ("JWT_SECRET", auth::testing::SECRET),
        (
            "THREESIGMA__RATE_LIMIT__TRUSTED_PROXIES",
            "10.0.0.0/8,not-a-network",
        ),
    ]);
    assert!(!ok);
    assert!(
        message.contains("rate_limit.trusted_proxies")
            && message.contains("\"not-a-network\" is not an address"),
        "{message}"
    );
}
