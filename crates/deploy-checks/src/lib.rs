//! Checks of the deployment files, as tests and nothing else: there is no Docker engine or
//! Kubernetes cluster on the build machine, so `tests/deploy.rs` reads the Dockerfiles,
//! `docker-compose.yml` and the manifests under `deploy/` the way the tools would, checks
//! that `docs/OPERATIONS.md` documents every setting of ingest, query and the detector, and
//! that the built `threesigma` binary links only what the distroless runtime image has.
//!
//! Run them with `just deploy-check`, or `cargo build -p cli --bin threesigma` then
//! `cargo test -p deploy-checks` (`cargo test --workspace` builds the binary itself).
