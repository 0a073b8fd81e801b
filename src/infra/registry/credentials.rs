//! Registry credentials: a mounted Docker `config.json`, and image pull secrets.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::app::ports::BoxFuture;

/// Reads image pull secrets (`kubernetes.io/dockerconfigjson`) of a namespace.
pub trait PullSecrets: Send + Sync {
    fn credentials<'a>(
        &'a self,
        namespace: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Credentials, String>>;
}

/// Who fipsgate is to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    Anonymous,
    /// User and password: sent as HTTP Basic, or to the token endpoint the registry names.
    Basic(String, String),
    /// A registry token, sent as is.
    Bearer(String),
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic(u, _) => write!(f, "Basic({u:?}, ***)"),
            RegistryAuth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Registry credentials from a Docker `config.json` (`auths`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    by_host: HashMap<String, (String, String)>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    /// Parses `{"auths": {"host": {"auth": base64(user:pass)} | {"username", "password"}}}`.
    pub fn from_docker_config(json: &[u8]) -> Result<Self, String> {
        let cfg: DockerConfig =
            serde_json::from_slice(json).map_err(|e| format!("invalid docker config: {e}"))?;
        let mut by_host = HashMap::new();
        for (key, a) in cfg.auths {
            let pair = match (a.auth, a.username, a.password) {
                (Some(b64), _, _) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| format!("auths.{key}.auth: {e}"))?;
                    let s = String::from_utf8(raw).map_err(|e| format!("auths.{key}.auth: {e}"))?;
                    let (u, p) = s
                        .split_once(':')
                        .ok_or_else(|| format!("auths.{key}.auth is not user:password"))?;
                    (u.to_string(), p.to_string())
                }
                (None, Some(u), Some(p)) => (u, p),
                _ => continue,
            };
            by_host.insert(normalise_host(&key), pair);
        }
        Ok(Self { by_host })
    }

    /// Adds `other`'s entries, keeping ours where both have a host.
    pub fn merge(&mut self, other: &Credentials) {
        for (k, v) in &other.by_host {
            self.by_host.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    /// The credentials for a registry host, if any.
    pub fn for_registry(&self, registry: &str) -> Option<&(String, String)> {
        self.by_host.get(&normalise_host(registry))
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

/// `https://index.docker.io/v1/` → `docker.io`, `https://r.io:5000/` → `r.io:5000`.
fn normalise_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    crate::domain::image::canonical_registry(host).to_string()
}

/// The credentials to use for `registry`: a pull secret's, else the mounted config's.
pub fn auth_for(registry: &str, pull: &Credentials, mounted: &Credentials) -> RegistryAuth {
    match pull
        .for_registry(registry)
        .or_else(|| mounted.for_registry(registry))
    {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config() {
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "registry.example.com:5000": {"username": "a", "password": "b:c"},
            "ignored.io": {}
        }}"#;
        let c = Credentials::from_docker_config(json).unwrap();
        assert_eq!(
            c.for_registry("docker.io"),
            Some(&("user".into(), "pass".into()))
        );
        assert_eq!(
            c.for_registry("registry.example.com:5000"),
            Some(&("a".into(), "b:c".into()))
        );
        assert_eq!(c.for_registry("ignored.io"), None);
        assert!(Credentials::from_docker_config(b"{").is_err());
        assert!(Credentials::from_docker_config(br#"{"auths": {"x": {"auth": "!!"}}}"#).is_err());
    }
}
