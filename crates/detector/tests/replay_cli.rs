//! `threesigma-detector replay` as a user runs it: a CSV in, JSON lines out, no database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

#[test]
fn replay_prints_one_json_line_per_incident() {
    let dir = std::env::temp_dir().join(format!("threesigma-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("counts.csv");
    let mut csv = String::from("minute,service,errors,total\n");
    for i in 0..60 {
        let minute = chrono::DateTime::from_timestamp(1_795_600_000 / 60 * 60 + i * 60, 0).unwrap();
        let errors = if i == 45 { 90 } else { 3 + (i % 2) };
        csv.push_str(&format!("{},api,{errors},400\n", minute.to_rfc3339()));
        csv.push_str(&format!("{},web,{},100\n", minute.timestamp(), 1 + (i % 3)));
    }
    std::fs::write(&input, csv).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_threesigma-detector"))
        .args(["replay", "--input"])
        .arg(&input)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let incident = lines[0].as_object().unwrap();
    let mut keys: Vec<&str> = incident.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "opened_at",
            "peak_z",
            "resolved_at",
            "service",
            "severity",
            "signal"
        ]
    );
    assert_eq!(incident["service"], "api");
    assert_eq!(incident["signal"], "error_count");
    assert!(incident["resolved_at"].is_string());

    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "minute,service,errors\n60,api,lots\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_threesigma-detector"))
        .args(["replay", "--input"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replay judges with the live detector's configuration: the same layers (config file,
/// environment, flags) reach it.
#[test]
fn replay_honours_the_config_file_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("threesigma-replay-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("counts.csv");
    let mut csv = String::from("minute,service,errors,total\n");
    for i in 0..60 {
        let errors = if i == 45 { 40 } else { 3 + (i % 2) };
        csv.push_str(&format!("{},api,{errors},400\n", 1_795_600_020 + i * 60));
    }
    std::fs::write(&input, csv).unwrap();
    let incidents = |configure: &dyn Fn(&mut Command)| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_threesigma-detector"));
        command
            .args(["replay", "--input"])
            .arg(&input)
            .env_remove("DATABASE_URL")
            .env_remove("THREESIGMA_CONFIG")
            .env_remove("THREESIGMA__DETECTION__MIN_COUNT");
        configure(&mut command);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().lines().count()
    };
    assert_eq!(incidents(&|_| {}), 1, "the burst of 40 fires by default");
    // A count guard above the burst (and above the five minutes around it the error-ratio
    // windows judge together), from the environment, then from a config file.
    assert_eq!(
        incidents(&|command| {
            command.env("THREESIGMA__DETECTION__MIN_COUNT", "100");
        }),
        0
    );
    let config = dir.join("detector.toml");
    std::fs::write(&config, "[detection]\nmin_count = 100\n").unwrap();
    assert_eq!(
        incidents(&|command| {
            command.arg("--config").arg(&config);
        }),
        0
    );
    // The sidecar scope too: another service's burst is not this replay's.
    assert_eq!(
        incidents(&|command| {
            command.args(["--service", "web"]);
        }),
        0
    );
    assert_eq!(
        incidents(&|command| {
            command.args(["--service", "api"]);
        }),
        1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
