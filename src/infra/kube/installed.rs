//! The configuration an installed fipsgate runs with: the ConfigMap its Deployment mounts, so
//! that `audit` judges as the webhook does.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;

/// The files of the ConfigMap a Deployment mounts, and where it mounts them.
#[derive(Debug, Clone)]
pub struct MountedConfig {
    /// `NAMESPACE/NAME` of the ConfigMap.
    pub config_map: String,
    /// The directory the container sees the files in, e.g. `/etc/fipsgate`.
    pub mount_path: String,
    /// File name → content.
    pub files: BTreeMap<String, String>,
}

/// The ConfigMap holding `config.yaml` that Deployment `namespace/name` mounts in its first
/// container.
pub async fn mounted_config(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<MountedConfig, String> {
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
    let deployment = (deployments.get(name).await)
        .map_err(|e| format!("Deployment {namespace}/{name}: {}", super::describe(&e)))?;
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .ok_or_else(|| format!("Deployment {namespace}/{name} has no pod template"))?;
    let container = pod.containers.first();
    let mounts = container
        .and_then(|c| c.volume_mounts.clone())
        .unwrap_or_default();
    let config_maps: kube::Api<ConfigMap> = kube::Api::namespaced(client, namespace);
    for volume in pod.volumes.unwrap_or_default() {
        let Some(cm) = volume.config_map.map(|c| c.name) else {
            continue;
        };
        let Some(mount) = mounts.iter().find(|m| m.name == volume.name) else {
            continue;
        };
        let found = (config_maps.get(&cm).await)
            .map_err(|e| format!("ConfigMap {namespace}/{cm}: {}", super::describe(&e)))?;
        let files = found.data.unwrap_or_default();
        if files.contains_key("config.yaml") {
            return Ok(MountedConfig {
                config_map: format!("{namespace}/{cm}"),
                mount_path: mount.mount_path.trim_end_matches('/').to_string(),
                files,
            });
        }
    }
    Err(format!(
        "Deployment {namespace}/{name} mounts no ConfigMap with config.yaml"
    ))
}
