//! fipsgate: a Kubernetes validating admission webhook that keeps non-FIPS container images out
//! of regulated clusters.
//!
//! The pure core (no IO): [`reference`] parses images, [`catalog`] knows the FIPS components,
//! [`attestation`] is the interface that turns images into results, [`policy`] reads namespace
//! labels, [`decision`] decides. The edges: [`check`] and [`cli`] for manifests and the catalogue.
#![forbid(unsafe_code)]

pub mod admission;
pub mod app;
pub mod attest;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod infra;
pub mod server;
pub mod telemetry;

/// Today's date in UTC: what certificate sunsets are compared against. The one clock read the
/// pure engine's callers make.
pub fn today_utc() -> jiff::civil::Date {
    jiff::tz::Offset::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}
