//! The Kubernetes API: namespaces (watch and live fetch), the inventory of what runs, image
//! pull secrets, and what `doctor` reads.

pub mod doctor;
mod installed;
mod inventory;
mod namespaces;
mod pull_secrets;

pub use installed::{MountedConfig, mounted_config};
pub use inventory::KubeInventory;
pub use namespaces::{kube_fetch, watch};
pub use pull_secrets::KubePullSecrets;

/// One line for a Kubernetes client error: an API server status as its message, code and
/// reason (never its debug dump); anything else as its causes, each said once, without the
/// client's variant names.
pub fn describe(e: &kube::Error) -> String {
    if let kube::Error::Api(s) = e {
        return format!("{} ({} {})", s.message, s.code, s.reason);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        let text = ["ServiceError: ", "HyperError: ", "HttpError: "]
            .iter()
            .fold(text.as_str(), |t, p| t.strip_prefix(p).unwrap_or(t))
            .to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_its_message_and_a_chain_is_said_once() {
        let status = kube::core::Status {
            message: "pods is forbidden".into(),
            reason: "Forbidden".into(),
            code: 403,
            ..Default::default()
        };
        let e = kube::Error::Api(Box::new(status));
        assert_eq!(describe(&e), "pods is forbidden (403 Forbidden)");
        let e = kube::Error::Service(Box::new(std::io::Error::other("connection refused")));
        assert_eq!(describe(&e), "connection refused");
    }
}
