#!/usr/bin/env bash
# A change against an earlier commit (default HEAD~1): builds that commit's release
# threesigma-ingest in a temporary worktree (its own target dir under target/, so the two
# builds never overwrite each other's binaries), builds this checkout's, and runs the ingest
# scenarios alternately on both (bench/ingest.py before-after). 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-HEAD~1}"
command -v oha >/dev/null || cargo install oha --locked
command -v psql >/dev/null || { echo "psql is needed (Debian: postgresql-client)" >&2; exit 1; }
before="$(mktemp -d)"
trap 'git worktree remove --force "$before/src" >/dev/null 2>&1 || true; rm -rf "$before"' EXIT
git worktree add --detach "$before/src" "$rev" >/dev/null
CARGO_TARGET_DIR="$PWD/target/before-after" \
  cargo build --release --manifest-path "$before/src/Cargo.toml" --bin threesigma-ingest
mkdir -p "$before/bin"
cp target/before-after/release/threesigma-ingest "$before/bin/"
cargo build --release --bin threesigma --bin threesigma-ingest
echo "before: $(git rev-parse --short "$rev"), after: the working tree at $(git rev-parse --short HEAD)" >&2
python3 bench/ingest.py before-after "$before/bin"
