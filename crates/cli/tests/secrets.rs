//! Secrets never reach a log line, a `Debug` dump or serialized settings: the whole stack
//! (`threesigma up`) runs with every secret setting marked, at debug log level, serves a
//! request on each API, stops, and its output is searched for the marks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use runtime::Overrides;
use store::testing::TestDatabase;

/// Marks, one per secret; none may appear in any output.
const DB_PASSWORD: &str = "db-pass-7f3a9c";
const READ_PASSWORD: &str = "replica-pass-51be0d";
const JWT_SECRET: &str = "jwt-secret-c0ffee-0123456789abcdef0123456789";
const HOOK_PATH: &str = "hook-token-9d2e11";
const HOOK_AUTH: &str = "hook-auth-4c7a55";

fn marks() -> [&'static str; 5] {
    [DB_PASSWORD, READ_PASSWORD, JWT_SECRET, HOOK_PATH, HOOK_AUTH]
}

fn with_password(url: &str, password: &str) -> String {
    url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{password}@"),
        1,
    )
}

fn assert_no_marks(what: &str, text: &str) {
    for mark in marks() {
        assert!(
            !text.contains(mark),
            "{what} shows a secret ({mark}):\n{text}"
        );
    }
}

#[test]
fn settings_never_show_secrets_in_debug_or_serialized_form() {
    let url = with_password("postgres://postgres@127.0.0.1:5432/x", DB_PASSWORD);
    let read_url = with_password("postgres://postgres@127.0.0.1:5432/x", READ_PASSWORD);
    let layer = || {
        Overrides::new()
            .set("database.url", Some(&url))
            .set("auth.secret", Some(JWT_SECRET))
    };
    let ingest: ingest::Settings = runtime::settings::load(None, layer()).unwrap();
    let query: query::Settings =
        runtime::settings::load(None, layer().set("query.read_url", Some(&read_url))).unwrap();
    let detector: detector::Settings = runtime::settings::load(
        None,
        Overrides::new()
            .set("database.url", Some(&url))
            .set(
                "webhook.url",
                Some(format!("https://hooks.example/{HOOK_PATH}")),
            )
            .set("webhook.authorization", Some(HOOK_AUTH)),
    )
    .unwrap();
    // The values were loaded...
    assert!(ingest.database.url().contains(DB_PASSWORD));
    assert_eq!(ingest.auth.secret.expose(), JWT_SECRET);
    assert!(query.query.read_url.expose().contains(READ_PASSWORD));
    assert!(detector.webhook.url.expose().contains(HOOK_PATH));
    // ...and no form of printing them shows them.
    for (name, debug, json) in [
        (
            "ingest",
            format!("{ingest:?}{ingest:#?}"),
            serde_json::to_string(&ingest).unwrap(),
        ),
        (
            "query",
            format!("{query:?}{query:#?}"),
            serde_json::to_string(&query).unwrap(),
        ),
        (
            "detector",
            format!("{detector:?}{detector:#?}"),
            serde_json::to_string(&detector).unwrap(),
        ),
    ] {
        assert_no_marks(&format!("{name} Debug"), &debug);
        assert_no_marks(&format!("{name} JSON"), &json);
    }
}

/// Reads a stream line by line into a channel (so the test can wait for a line with a
/// deadline) and keeps everything for the final check.
fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_stack_logs_no_secret() {
    let db = TestDatabase::create().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_threesigma"))
        .args([
            "up",
            "--ingest-bind",
            "127.0.0.1:0",
            "--query-bind",
            "127.0.0.1:0",
            "--detector-bind",
            "127.0.0.1:0",
        ])
        .env("DATABASE_URL", with_password(&db.url, DB_PASSWORD))
        .env("JWT_SECRET", JWT_SECRET)
        .env_remove("JWT_SECRET_FILE")
        .env_remove("THREESIGMA_CONFIG")
        .env(
            "THREESIGMA__QUERY__READ_URL",
            with_password(&db.url, READ_PASSWORD),
        )
        .env(
            "THREESIGMA__WEBHOOK__URL",
            format!("http://127.0.0.1:9/{HOOK_PATH}"),
        )
        .env("THREESIGMA__WEBHOOK__AUTHORIZATION", HOOK_AUTH)
        .env("THREESIGMA__DETECTOR__INTERVAL", "1s")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());

    let mut printed = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !printed
        .iter()
        .any(|line: &String| line.contains("Press Ctrl-C"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match stdout.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => {
                let _ = child.kill();
                let logs: Vec<String> = stderr.try_iter().collect();
                panic!(
                    "up did not start:\n{}\n{}",
                    printed.join("\n"),
                    logs.join("\n")
                );
            }
        }
    }
    let find = |prefix: &str| {
        printed
            .iter()
            .find_map(|line| line.trim().strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{}", printed.join("\n")))
    };
    let ingest = find("ingest    POST ");
    let query_line = find("query     GET  ");
    let query = query_line
        .split("/api/v1/incidents")
        .next()
        .unwrap()
        .to_owned();
    let ingest_token = find("export INGEST_TOKEN=");
    let read_token = find("export READ_TOKEN=");

    let client = reqwest::Client::new();
    let sent = client
        .post(&ingest)
        .bearer_auth(&ingest_token)
        .json(&serde_json::json!({"service": "web", "level": "error", "message": "boom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let read = client
        .get(format!("{query}/api/v1/logs?service=web"))
        .bearer_auth(&read_token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let refused = client
        .get(format!("{query}/api/v1/logs"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // A few detector cycles (reading through the read URL, webhook configured).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "up exited with {status}");

    printed.extend(stdout.try_iter());
    let logs: Vec<String> = stderr.iter().collect();
    let output = format!("{}\n{}", printed.join("\n"), logs.join("\n"));
    // The logs were captured (at debug level), so their silence about secrets means something.
    assert!(output.contains("Ingest is listening"), "{output}");
    assert!(
        output.contains("DEBUG"),
        "no debug lines captured:\n{output}"
    );
    assert_no_marks("the output of threesigma up", &output);
    // `up` made an admin on this fresh database: its password hash (as text, or as the byte
    // list tokio-postgres prints parameters in) is no more a log line than the password.
    assert!(output.contains("Admin login (created now)"), "{output}");
    for hash in ["$argon2", "36, 97, 114, 103, 111, 110, 50"] {
        assert!(
            !output.contains(hash),
            "a password hash in the logs:\n{output}"
        );
    }
}
