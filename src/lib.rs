//! fipsgate: a Kubernetes validating admission webhook that keeps non-FIPS container images out
//! of regulated clusters.
//!
//! The crate is layered; a module imports only the layers below it (`tests/integration/layering.rs` checks):
//!
//! ```text
//! cli                                   composition root: flags, wiring, exit codes
//! server            infra               inbound HTTPS edge | outbound adapters (never each other)
//! telemetry                             metrics and logs
//! app                                   use cases and their ports
//! config                                the file shape, compiled into the values below
//! catalog  attest  engine  admission    pure logic: no IO, no clock
//! scan                                  pure: an image filesystem's binaries, read through a trait
//! domain                                vocabulary
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod admission;
pub mod app;
pub mod attest;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod infra;
pub mod report;
pub mod scan;
pub mod server;
pub mod telemetry;
