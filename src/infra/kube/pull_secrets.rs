//! Image pull secrets read through the Kubernetes API (needs `get` on secrets).

use crate::app::ports::BoxFuture;
use crate::infra::registry::{Credentials, PullSecrets};

/// Pull secrets read through the Kubernetes API (needs `get` on secrets).
pub struct KubePullSecrets {
    pub client: kube::Client,
}

impl PullSecrets for KubePullSecrets {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Credentials, String>> {
        Box::pin(async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(self.client.clone(), namespace);
            let mut creds = Credentials::default();
            for name in names {
                let secret = api
                    .get_opt(name)
                    .await
                    .map_err(|e| format!("secret {namespace}/{name}: {}", super::describe(&e)))?;
                let Some(secret) = secret else { continue };
                if secret.type_.as_deref() != Some("kubernetes.io/dockerconfigjson") {
                    continue;
                }
                if let Some(data) = secret.data.and_then(|mut d| d.remove(".dockerconfigjson")) {
                    creds.merge(&Credentials::from_docker_config(&data.0)?);
                }
            }
            Ok(creds)
        })
    }
}
