#!/usr/bin/env bash
# Runs the builder stage of Dockerfile.ingest without Docker: cargo-chef prepare, cook the
# dependencies (the cached layer), then build the sources with the same flags, and shows
# that the source step recompiles only the workspace crates. Everything under /tmp.
set -euxo pipefail
command -v cargo-chef || cargo install cargo-chef --locked
rm -rf /tmp/chef-src && mkdir -p /tmp/chef-src
cd "$(dirname "$0")/../.." && git ls-files -z | xargs -0 -I{} cp --parents {} /tmp/chef-src/
cd /tmp/chef-src
# Emulate .dockerignore (it excludes docs/, deploy/, Dockerfiles and compose from the context).
rm -rf docs deploy Dockerfile.* docker-compose.yml bench/results
export CARGO_TARGET_DIR=/tmp/chef-target
cargo chef prepare --recipe-path /tmp/recipe.json
mkdir -p /tmp/chef-cook && cd /tmp/chef-cook && rm -rf ./* && cp /tmp/recipe.json recipe.json
time cargo chef cook --release --locked --recipe-path recipe.json --bin threesigma-ingest
cd /tmp/chef-src
time cargo build --release --locked --bin threesigma-ingest
ls -la /tmp/chef-target/release/threesigma-ingest
