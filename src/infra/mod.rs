//! Outbound adapters: OCI registries, the Kubernetes API, certificates and the crypto
//! provider. They implement the ports of `app`; [`rootfs`] is a directory as a scan's tree.

pub mod certs;
pub mod crypto;
pub mod image;
pub mod kube;
pub mod probe;
pub mod registry;
pub mod rootfs;
pub mod scan_cache;
mod sources;

pub use sources::source_chain;
