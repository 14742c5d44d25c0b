# Everyday tasks. `just --list` shows them all.

# The test suite (needs PostgreSQL on 127.0.0.1:5432, or DATABASE_URL).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# What CI runs, from this checkout.
ci:
    bash .ci/run

# Ingest, detector and query in one process (migrates first).
up *ARGS:
    cargo run --release --bin threesigma -- up {{ARGS}}

# `up` plus simulated traffic that opens an incident.
demo *ARGS:
    cargo run --release --bin threesigma -- demo {{ARGS}}

# Apply migrations to $DATABASE_URL.
migrate:
    cargo run --release --bin threesigma -- migrate

# Detection over a CSV of per-minute counts, no database.
replay FILE:
    cargo run --release --bin threesigma-detector -- replay --input {{FILE}}

# Ingest throughput, latency, bulk load, overload and kill -9 figures (docs/BENCHMARKS.md).
bench-ingest:
    bash bench/ingest.sh

# Every benchmark.
bench: bench-ingest bench-detection bench-detector bench-query bench-patterns bench-explain bench-search

# This checkout's ingest against an earlier commit's, alternating runs (docs/BENCHMARKS.md).
bench-ingest-before-after REV="HEAD~1":
    bash bench/before-after.sh {{REV}}

# COPY against UNNEST, alternating runs (docs/BENCHMARKS.md).
bench-copy-vs-unnest:
    bash bench/ingest.sh copy-vs-unnest

# Detection quality: simulated traffic through `threesigma-detector replay` (docs/DETECTION.md).
bench-detection:
    cargo build --release --bin threesigma-detector
    python3 bench/detection.py

# One service's minutes through `replay --minutes`, plotted (docs/detection/replay-minutes.png).
replay-plot:
    cargo build --release --bin threesigma-detector
    python3 bench/replay_plot.py

# Detector cycle time over 1,000 services, with 100k and 10M log rows (docs/BENCHMARKS.md).
bench-detector:
    cargo run --release -p detector --example cycle_bench

# Template miner speed against exact-string grouping, one core (docs/PATTERNS.md).
bench-patterns:
    cargo run --release -p domain --example pattern_bench

# One incident explanation with 256k and 10M log rows (docs/PATTERNS.md).
bench-explain:
    cargo run --release -p detector --example explain_bench

# Keyset pages with 1M incidents and 10M logs, against OFFSET (docs/BENCHMARKS.md).
bench-query:
    cargo run --release -p query --example page_bench

# Log search over 10M rows through the API, then ingest with and without the search
# structures in alternating runs (docs/SEARCH.md, docs/BENCHMARKS.md#log-search).
bench-search:
    cargo run --release -p query --example search_bench
    bash bench/ingest.sh search

# PostgreSQL failover with pg_auto_failover (root; installs it from Debian): tuned and default
# manager settings (docs/RELIABILITY.md).
bench-failover:
    cargo build --release --bins
    python3 bench/failover.py
    python3 bench/failover.py --defaults

# Property-based API fuzzing of the query API's OpenAPI document (PyPI schemathesis, local only).
schemathesis:
    bash bench/schemathesis.sh

# Container images: threesigma/{ingest,query,detector,cli}:TAG (needs a Docker engine).
docker-build TAG="latest":
    docker build -f Dockerfile.ingest -t threesigma/ingest:{{TAG}} .
    docker build -f Dockerfile.query -t threesigma/query:{{TAG}} .
    docker build -f Dockerfile.detector -t threesigma/detector:{{TAG}} .
    docker build -f Dockerfile.cli -t threesigma/cli:{{TAG}} .

# The whole stack with docker compose (copy example.env to .env first).
compose-up *ARGS:
    deploy/scripts/db-certs.sh
    docker compose up -d --build {{ARGS}}

# Checks of the Dockerfiles, compose file and Kubernetes manifests (no engine needed) and of
# what the built binary links, the manifests' detector flags run for real, and the query API
# against a streaming replica.
deploy-check:
    cargo build -p cli --bin threesigma
    cargo test -p deploy-checks --test deploy
    cargo test -p detector --test sidecar
    cargo test -p query --test replica

# The security review's attacks against a release ingest, each HELD or FAILED (docs/SECURITY.md).
attacks:
    cargo build --release --bin threesigma --bin threesigma-ingest
    python3 bench/attacks.py

# Real shipper clients (OpenTelemetry Python SDK, python-logging-loki, syslog-ng's
# elasticsearch-http(), rsyslog's omelasticsearch) sending to a release ingest on 127.0.0.1;
# installs them if missing.
shippers *CLIENTS:
    cargo build --release --bins
    python3 bench/shippers.py {{CLIENTS}}

# The operator console in Debian's Chromium, headless (Playwright for Python, axe-core):
# sign in, incident, chart, acknowledge, services, logs, sign out; screenshots in
# target/console-shots. Installs chromium and the Python packages if missing.
console:
    cargo build --release --bins
    python3 bench/console.py

# Fuzzes every ingest decoder for SECONDS each (nightly toolchain; `cargo install cargo-fuzz`
# once), starting from fuzz/seeds; crashes land in fuzz/artifacts/<target>/.
fuzz SECONDS="60":
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    for target in native otlp_protobuf otlp_json loki_protobuf loki_json bulk; do
      mkdir -p corpus/$target
      cargo +nightly fuzz run $target corpus/$target seeds/$target -- \
        -max_total_time={{SECONDS}} -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1
    done
