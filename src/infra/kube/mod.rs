//! The Kubernetes API: namespaces (watch and live fetch), the inventory of what runs, and
//! image pull secrets.

pub mod inventory;
pub mod namespaces;
pub mod pull_secrets;

pub use inventory::KubeInventory;
pub use pull_secrets::KubePullSecrets;
