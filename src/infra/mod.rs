//! Outbound adapters: OCI registries, the Kubernetes API, certificates and the crypto
//! provider. They implement the ports of `app`.

pub mod certs;
pub mod crypto;
pub mod kube;
pub mod probe;
pub mod registry;
mod sources;

pub use sources::source_chain;
