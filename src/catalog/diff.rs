//! What a catalogue change admits or denies: registry roots, certificates and components
//! compared between two catalogues, and the images whose verdict the change moves.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Catalog, Certificate, Component};
use crate::domain::image::ImageRef;

/// The differences between an old and a new catalogue.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogDiff {
    pub registries_added: Vec<String>,
    pub registries_removed: Vec<String>,
    pub components: Vec<ComponentChange>,
    pub certificates: Vec<CertificateChange>,
    /// Images given to compare whose component or status differs.
    pub images: Vec<ImageChange>,
}

/// A component added, removed or changed, with the full patterns it now admits or no longer
/// admits.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentChange {
    pub id: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admits: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_longer_admits: Vec<String>,
    /// Other fields that changed, as `field: old -> new`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// A certificate added, removed or changed.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateChange {
    pub number: String,
    pub change: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// An image judged differently: `component (status)`, or `not listed`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ImageChange {
    pub image: String,
    pub old: String,
    pub new: String,
}

impl CatalogDiff {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Compares two catalogues, and how each judges `images`.
pub fn diff(old: &Catalog, new: &Catalog, images: &[ImageRef]) -> CatalogDiff {
    let (or, nr) = (&old.as_file().registries, &new.as_file().registries);
    CatalogDiff {
        registries_added: nr.iter().filter(|r| !or.contains(r)).cloned().collect(),
        registries_removed: or.iter().filter(|r| !nr.contains(r)).cloned().collect(),
        components: components(old, new),
        certificates: certificates(old.certificates(), new.certificates()),
        images: (images.iter())
            .filter_map(|i| {
                let (o, n) = (verdict(old, i), verdict(new, i));
                (o != n).then(|| ImageChange {
                    image: i.to_string(),
                    old: o,
                    new: n,
                })
            })
            .collect(),
    }
}

fn verdict(catalog: &Catalog, image: &ImageRef) -> String {
    let a = catalog.lookup(image);
    match a.component() {
        Some(c) => format!("{} ({})", c.id, a.status()),
        None => "not listed".into(),
    }
}

fn components(old: &Catalog, new: &Catalog) -> Vec<ComponentChange> {
    let mut out = Vec::new();
    for o in old.components() {
        if new.get(&o.id).is_none() {
            out.push(ComponentChange {
                id: o.id.clone(),
                change: "removed",
                admits: Vec::new(),
                no_longer_admits: old.patterns_of(o),
                fields: Vec::new(),
            });
        }
    }
    for n in new.components() {
        let Some(o) = old.get(&n.id) else {
            out.push(ComponentChange {
                id: n.id.clone(),
                change: "added",
                admits: new.patterns_of(n),
                no_longer_admits: Vec::new(),
                fields: Vec::new(),
            });
            continue;
        };
        let (op, np): (BTreeSet<_>, BTreeSet<_>) = (
            old.patterns_of(o).into_iter().collect(),
            new.patterns_of(n).into_iter().collect(),
        );
        let change = ComponentChange {
            id: n.id.clone(),
            change: "changed",
            admits: np.difference(&op).cloned().collect(),
            no_longer_admits: op.difference(&np).cloned().collect(),
            fields: fields(o, n),
        };
        if !(change.admits.is_empty()
            && change.no_longer_admits.is_empty()
            && change.fields.is_empty())
        {
            out.push(change);
        }
    }
    out
}

/// `field: old -> new` for what a component's judging depends on.
fn fields(o: &Component, n: &Component) -> Vec<String> {
    let show = |v: serde_json::Value| v.to_string();
    let pairs = [
        (
            "status",
            show(o.status.as_str().into()),
            show(n.status.as_str().into()),
        ),
        (
            "exceptions",
            show(o.exceptions.clone().into()),
            show(n.exceptions.clone().into()),
        ),
        ("hostOnly", o.host_only.to_string(), n.host_only.to_string()),
        (
            "digests",
            show(o.digests.clone().into()),
            show(n.digests.clone().into()),
        ),
        (
            "modules",
            serde_json::to_string(&o.modules).unwrap_or_default(),
            serde_json::to_string(&n.modules).unwrap_or_default(),
        ),
    ];
    (pairs.into_iter())
        .filter(|(_, a, b)| a != b)
        .map(|(f, a, b)| format!("{f}: {a} -> {b}"))
        .collect()
}

fn certificates(old: &[Certificate], new: &[Certificate]) -> Vec<CertificateChange> {
    let mut out = Vec::new();
    let find = |list: &[Certificate], n: &str| list.iter().find(|c| c.number == n).cloned();
    for o in old {
        if find(new, &o.number).is_none() {
            out.push(CertificateChange {
                number: o.number.clone(),
                change: "removed",
                fields: Vec::new(),
            });
        }
    }
    for n in new {
        let Some(o) = find(old, &n.number) else {
            out.push(CertificateChange {
                number: n.number.clone(),
                change: "added",
                fields: Vec::new(),
            });
            continue;
        };
        let sunset = |c: &Certificate| c.sunset.map_or("none".into(), |d| d.to_string());
        let fields: Vec<String> = [
            ("standard", o.standard.clone(), n.standard.clone()),
            ("status", o.status.as_str().into(), n.status.as_str().into()),
            ("sunset", sunset(&o), sunset(n)),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(f, a, b)| format!("{f}: {a} -> {b}"))
        .collect();
        if !fields.is_empty() {
            out.push(CertificateChange {
                number: n.number.clone(),
                change: "changed",
                fields,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_says_what_it_admits_and_denies() {
        let old = Catalog::embedded();
        let mut file = Catalog::default_file();
        file.registries.push("registry.example.com/fips".into());
        file.components.retain(|c| c.id != "etcd");
        for c in &mut file.components {
            if c.id == "coredns" {
                c.images = vec!["**/coredns".into(), "**/dns/coredns".into()];
            }
            if c.id == "kube-proxy" {
                c.status = crate::domain::fips::Status::Partial;
                c.exceptions = vec!["iptables".into()];
            }
        }
        file.certificates.retain(|c| c.number != "3678");
        let new = Catalog::build(vec![("new".into(), file)]).unwrap();
        let images: Vec<ImageRef> = [
            "registry.example.com/fips/k8s/coredns:v1",
            "gcr.io/spectro-images-fips/etcd:v3",
            "gcr.io/spectro-images-fips/coredns:v1",
        ]
        .iter()
        .map(|i| ImageRef::parse(i).unwrap())
        .collect();
        let d = diff(&old, &new, &images);
        assert_eq!(d.registries_added, ["registry.example.com/fips"]);
        let by_id = |id: &str| d.components.iter().find(|c| c.id == id).unwrap();
        assert_eq!(by_id("etcd").change, "removed");
        assert!(
            by_id("etcd")
                .no_longer_admits
                .contains(&"gcr.io/spectro-images-fips/**/etcd".to_string())
        );
        let dns = by_id("coredns");
        assert!(
            dns.admits
                .contains(&"gcr.io/spectro-images-fips/**/dns/coredns".to_string())
        );
        assert!(
            dns.admits
                .contains(&"registry.example.com/fips/**/coredns".to_string())
        );
        assert_eq!(
            by_id("kube-proxy").fields,
            [
                "status: \"full\" -> \"partial\"",
                "exceptions: [] -> [\"iptables\"]"
            ]
        );
        assert_eq!(d.certificates[0].number, "3678");
        assert_eq!(d.certificates[0].change, "removed");
        let moved: Vec<(&str, &str, &str)> = (d.images.iter())
            .map(|i| (i.image.as_str(), i.old.as_str(), i.new.as_str()))
            .collect();
        assert_eq!(
            moved,
            [
                (
                    "registry.example.com/fips/k8s/coredns:v1",
                    "not listed",
                    "coredns (full)"
                ),
                (
                    "gcr.io/spectro-images-fips/etcd:v3",
                    "etcd (full)",
                    "not listed"
                ),
            ]
        );
        assert!(diff(&old, &Catalog::embedded(), &images).is_empty());
    }
}
