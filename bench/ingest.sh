#!/usr/bin/env bash
# The ingest benchmark (see bench/ingest.py): installs the load generator if needed, builds
# release binaries, runs every scenario against 127.0.0.1, prints the markdown table and
# keeps the raw JSON in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v oha >/dev/null || cargo install oha --locked
command -v psql >/dev/null || { echo "psql is needed (Debian: postgresql-client)" >&2; exit 1; }
cargo build --release --bin threesigma --bin threesigma-ingest
exec python3 bench/ingest.py "$@"
