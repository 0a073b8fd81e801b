//! The Kubernetes API: namespaces (watch and live fetch), the inventory of what runs, image
//! pull secrets, and what `doctor` reads.

pub mod doctor;
mod inventory;
mod namespaces;
mod pull_secrets;

pub use inventory::KubeInventory;
pub use namespaces::{kube_fetch, watch};
pub use pull_secrets::KubePullSecrets;
