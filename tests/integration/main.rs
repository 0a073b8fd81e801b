//! The integration tests, one binary: each module is a tier or a concern.
//!
//! - `admission`: the webhook's behaviour, in process (`Router::oneshot`, no socket);
//! - `callers`: client authentication of the API server, over sockets;
//! - `transport`: what only a socket shows (TLS, both HTTP versions, rotation, drain, slow
//!   clients, floods, connection limits);
//! - `cli`: the `fipsgate` binary as a user runs it; `golden`: everything a user sees,
//!   byte for byte;
//! - `hostile`: hostile inputs; `bounds`: every bound on what a caller can make fipsgate hold
//!   or produce (list entries, answer size, buffered bytes per source, connection age);
//!   `registry_bounds`: a hostile registry, in process;
//!   `layering`: the crate's layers; `monitoring`: the rules and dashboard against what
//!   fipsgate exports, promtool and a real Prometheus (the last two `#[ignore]`d);
//! - `scan`: `fipsgate scan` on host binaries, and on real fixtures (`#[ignore]`d, built by
//!   `tests/fixtures/scan/build.sh`); `scan_images`: `fipsgate scan` of images built in Rust,
//!   from OCI layouts and from a real registry (`#[ignore]`d);
//! - `scan_attest`: `fipsgate attest` against a real OCI registry, then admission under
//!   `evidence.minimum: scan` (`#[ignore]`d, run by `tests/run.sh`);
//! - `attestations` (a real OCI registry), `deploy` (kustomize, the real binary), `e2e` (a
//!   real kube-apiserver): `#[ignore]`d, run by `tests/run.sh`.

mod common;

mod admission;
mod attestations;
mod audit_scan;
mod bounds;
mod bypass;
mod callers;
mod cli;
mod deploy;
mod e2e;
mod golden;
mod hostile;
mod layering;
mod monitoring;
mod registry_bounds;
mod scan;
mod scan_attest;
mod scan_images;
mod transport;
