//! The deployment files run the real detector: the Kubernetes manifests' detector
//! arguments (the central Deployment and the `--service` sidecar) are accepted by the
//! binary and do a live evaluation, and the images' `--healthcheck` probe tells a serving
//! detector from a stopped one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use runtime::testing::ServiceCommand;
use store::testing::TestDatabase;

const DETECTOR: &str = env!("CARGO_BIN_EXE_threesigma-detector");

/// The `args:` of the detector containers of a manifest (written as JSON-style flow lists).
fn detector_args(manifest: &str) -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/k8s")
        .join(manifest);
    let text = std::fs::read_to_string(path).unwrap();
    let mut found = Vec::new();
    let mut in_detector = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(image) = line.strip_prefix("image: ") {
            in_detector = image == "threesigma/detector";
        } else if in_detector && let Some(list) = line.strip_prefix("args: ") {
            found.push(serde_json::from_str(list).unwrap());
        }
    }
    assert!(!found.is_empty(), "{manifest}: no detector args");
    found
}

/// The arguments without their listen address.
fn without_bind(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--bind" {
            args.next();
        } else {
            out.push(arg.clone());
        }
    }
    out
}

fn healthcheck(bind: &str) -> std::process::Output {
    Command::new(DETECTOR)
        .args(["--healthcheck", "--bind", bind])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_arguments_run_the_detector_and_the_healthcheck_sees_it() {
    let db = TestDatabase::create().await;
    let sidecar = detector_args("example-app-with-detector-sidecar.yaml").remove(0);
    assert!(sidecar.windows(2).any(|w| w == ["--service", "checkout"]));
    for args in [detector_args("detector.yaml").remove(0), sidecar.clone()] {
        let output = Command::new(DETECTOR)
            .args(without_bind(&args))
            .args(["--bind", "127.0.0.1:0", "once"])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("evaluated"), "{args:?}: {stderr}");
    }

    // The sidecar serving, probed the way the image's HEALTHCHECK does.
    let mut detector = ServiceCommand::new(DETECTOR)
        .args(without_bind(&sidecar))
        .env("DATABASE_URL", &db.url)
        .spawn();
    let bind = detector.bind();
    let started = Instant::now();
    while !healthcheck(&bind).status.success() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sidecar never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    detector.kill();
    let probe = healthcheck(&bind);
    assert!(!probe.status.success(), "a stopped detector is not healthy");
    assert!(
        String::from_utf8_lossy(&probe.stderr).starts_with("error: "),
        "one line saying why"
    );
}
