//! The Kubernetes client of the commands that talk to a cluster (`audit`, `doctor`), from
//! `--kubeconfig` and `--context` as kubectl reads them.

use std::path::PathBuf;

use anyhow::Context as _;

/// The configuration of `context`, else of the current kubeconfig context, else in-cluster.
pub(crate) async fn kube_config(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
) -> anyhow::Result<kube::Config> {
    let options = kube::config::KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    if let Some(path) = kubeconfig {
        let file = kube::config::Kubeconfig::read_from(&path)
            .with_context(|| format!("--kubeconfig {}", path.display()))?;
        return kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .with_context(|| format!("--kubeconfig {}", path.display()));
    }
    match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => Ok(c),
        Err(e) if context.is_none() => kube::Config::infer()
            .await
            .with_context(|| format!("no kubeconfig ({e}) and not in a cluster")),
        Err(e) => Err(e).context("kubeconfig"),
    }
}
