//! Grouping accuracy of `threesigma patterns` on the Loghub-2k samples, through the release
//! binary's own command: every message of a system goes in on standard input, one template
//! per line comes out, and a message counts as correct when the messages sharing its
//! template are exactly those sharing its true event (Zhu et al., ICSE-SEIP 2019).
//!
//! The samples live beside the clone on CI (`LOGHUB_2K` may point elsewhere); without them
//! the test says so and skips.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SYSTEMS: [&str; 10] = [
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "BGL",
    "HPC",
    "Thunderbird",
    "Windows",
    "Linux",
    "OpenSSH",
];

fn samples() -> Option<PathBuf> {
    let dir = std::env::var_os("LOGHUB_2K").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub-2k"),
        PathBuf::from,
    );
    if dir.join("HDFS.csv").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: the Loghub-2k samples are not at {} (set LOGHUB_2K to their folder)",
            dir.display()
        );
        None
    }
}

/// `(message, true event id)` of each row.
fn read(path: &PathBuf) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    reader
        .deserialize::<HashMap<String, String>>()
        .map(|row| {
            let row = row.unwrap_or_else(|e| panic!("{path:?}: {e}"));
            (
                row["content"].replace(['\n', '\r'], " "),
                row["event_id"].clone(),
            )
        })
        .collect()
}

fn templates(messages: &[&str]) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_threesigma"))
        .arg("patterns")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("threesigma patterns: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    let input = messages.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    writer.join().ok();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Share of messages whose template groups exactly the messages of their true event.
fn grouping_accuracy(truth: &[&str], predicted: &[String]) -> f64 {
    let mut by_truth: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_template: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (t, p)) in truth.iter().zip(predicted).enumerate() {
        by_truth.entry(t).or_default().push(i);
        by_template.entry(p).or_default().push(i);
    }
    let correct: usize = by_template
        .values()
        .filter(|group| by_truth[truth[group[0]]] == **group)
        .map(Vec::len)
        .sum();
    correct as f64 / truth.len() as f64
}

#[test]
fn grouping_accuracy_on_loghub_2k_meets_the_target_with_one_configuration() {
    let Some(dir) = samples() else { return };
    let mut scores = Vec::new();
    for system in SYSTEMS {
        let rows = read(&dir.join(format!("{system}.csv")));
        let messages: Vec<&str> = rows.iter().map(|(m, _)| m.as_str()).collect();
        let truth: Vec<&str> = rows.iter().map(|(_, e)| e.as_str()).collect();
        let predicted = templates(&messages);
        assert_eq!(
            predicted.len(),
            messages.len(),
            "{system}: one template per message"
        );
        let score = grouping_accuracy(&truth, &predicted);
        eprintln!("{system:<12} {score:.3}");
        scores.push((system, score));
    }
    let mean = scores.iter().map(|(_, s)| s).sum::<f64>() / scores.len() as f64;
    eprintln!("{:<12} {mean:.3}", "mean");
    assert!(
        mean >= 0.93,
        "mean grouping accuracy {mean:.3} < 0.93: {scores:?}"
    );
    for (system, score) in scores {
        assert!(
            score >= 0.80,
            "{system}: grouping accuracy {score:.3} < 0.80"
        );
    }
}

#[test]
fn the_accuracy_measure_counts_only_exact_groups() {
    let truth = ["a", "a", "b", "c"];
    let split = ["x", "y", "z", "w"].map(str::to_owned);
    let merged = ["x", "x", "x", "w"].map(str::to_owned);
    let exact = ["x", "x", "z", "w"].map(str::to_owned);
    assert!((grouping_accuracy(&truth, &split) - 0.5).abs() < 1e-9);
    assert!((grouping_accuracy(&truth, &merged) - 0.25).abs() < 1e-9);
    assert!((grouping_accuracy(&truth, &exact) - 1.0).abs() < 1e-9);
}
