//! The detector serves only health and metrics: it must not link the JWT, password hashing
//! or rate-limiting crates that ingest and query need (they come in through `auth` and
//! `access`, which the detector does not depend on).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_detector_links_no_auth_or_rate_limiting_crates() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "detector",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // The tree is real: it has the detector's own HTTP and storage layers.
    for present in ["web", "runtime", "store", "actix-web"] {
        assert!(crates.contains(&present), "{present} missing from\n{tree}");
    }
    for absent in [
        "auth",
        "access",
        "jsonwebtoken",
        "argon2",
        "actix-governor",
        "governor",
    ] {
        assert!(
            !crates.contains(&absent),
            "the detector links {absent}:\n{tree}"
        );
    }
}
