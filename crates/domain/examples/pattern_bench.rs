//! Speed of the template miner on one core, against grouping the same messages by exact
//! string in the same run (the cheapest grouping there is).
//!
//! `cargo run --release -p domain --example pattern_bench`
//!
//! Messages: the Loghub-2k samples when `LOGHUB_2K` (or the folder beside the clone) has
//! them, else 20,000 generated ones of four shapes. Each pass builds a new miner, teaches it
//! every message and asks each message's template (what `threesigma patterns` does); the
//! baseline counts each message in a hash map and looks it up again. Passes alternate,
//! five of each; the medians are reported.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use domain::patterns::Miner;

fn loghub() -> Option<Vec<String>> {
    let dir = std::env::var_os("LOGHUB_2K").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/loghub-2k"),
        PathBuf::from,
    );
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_some_and(|e| e == "csv") {
            let mut reader = csv::Reader::from_path(&path).ok()?;
            for row in reader.deserialize::<HashMap<String, String>>() {
                messages.push(row.ok()?.remove("content")?);
            }
        }
    }
    (!messages.is_empty()).then_some(messages)
}

/// 20,000 messages of four shapes with numbers, ids, addresses, paths and a few words.
fn generated() -> Vec<String> {
    let verbs = ["open", "close", "read", "write", "sync"];
    let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..20_000)
        .map(|_| {
            let (t, a, b) = (next() % 40, next(), next());
            let verb = verbs[(t % 5) as usize];
            let user = users[(a % 7) as usize];
            match t / 10 {
                0 => format!(
                    "Failed to {verb} block blk_{a} of size {} from /10.{}.{}.{}:50010",
                    b % 100_000,
                    a % 256,
                    b % 256,
                    t
                ),
                1 => format!(
                    "session {verb} for user {user} by (uid={}) in {} ms",
                    a % 1000,
                    b % 5000
                ),
                2 => format!(
                    "worker-{t} request {a:x}-{b:x} {verb} /api/v1/items/{} status={} bytes={}",
                    a % 9999,
                    200 + b % 300,
                    b % 65536
                ),
                _ => format!(
                    "[instance: {a:016x}] {verb} of /var/lib/data/{user}/{} took {}.{} s",
                    b % 77,
                    a % 60,
                    b % 1000
                ),
            }
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (messages, source) = match loghub() {
        Some(m) => (m, "Loghub-2k samples"),
        None => {
            eprintln!("Loghub-2k samples not found (set LOGHUB_2K): using generated messages.");
            (generated(), "generated messages")
        }
    };
    let n = messages.len() as f64;
    let (mut exact, mut mined) = (Vec::new(), Vec::new());
    let mut templates = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for m in &messages {
            *counts.entry(m.as_str()).or_default() += 1;
        }
        for m in &messages {
            black_box(counts.get(m.as_str()));
        }
        exact.push(n / start.elapsed().as_secs_f64());

        let start = Instant::now();
        let mut miner = Miner::default();
        for m in &messages {
            miner.add(m);
        }
        for m in &messages {
            black_box(miner.template(m));
        }
        mined.push(n / start.elapsed().as_secs_f64());
        templates = miner.len();
    }
    let (exact, mined) = (median(exact), median(mined));
    println!(
        "pattern_bench: {} {source}, {templates} templates, median of 5 passes, one core",
        messages.len()
    );
    println!("  exact-string grouping  {exact:>12.0} messages/s");
    println!(
        "  template miner         {mined:>12.0} messages/s  ({:.3} of exact)",
        mined / exact
    );
}
