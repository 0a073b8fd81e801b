//! Outbound adapters.
pub mod certs;
pub mod crypto;
pub mod registry;
