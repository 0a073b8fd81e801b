//! fipsgate: a Kubernetes validating admission webhook that keeps non-FIPS container images out
//! of regulated clusters.
//!
//! The pure core (no IO): [`reference`] parses images, [`catalog`] knows the FIPS components,
//! [`attestation`] is the interface that turns images into results, [`policy`] reads namespace
//! labels, [`decision`] decides. The edges: [`check`] and [`cli`] for manifests and the catalogue.
#![forbid(unsafe_code)]

pub mod admission;
pub mod attestation;
pub mod audit;
pub mod catalog;
pub mod certs;
pub mod check;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod dsse;
pub mod inventory;
pub mod metrics;
pub mod namespaces;
pub mod policy;
pub mod reference;
pub mod registry;
pub mod resolver;
pub mod server;
pub mod workload;
pub mod yaml;

/// Today's date in UTC: what certificate sunsets are compared against. The one clock read the
/// pure engine's callers make.
pub fn today_utc() -> jiff::civil::Date {
    jiff::tz::Offset::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}
