//! The vocabulary: image references, patterns, FIPS types, policy levels and workloads.
pub mod assessment;
pub mod fips;
pub mod image;
pub mod pattern;
pub mod policy;
pub mod workload;
