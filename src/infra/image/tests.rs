//! Resolution and pulls over an in-memory source: platforms, nested indexes, loops, and blobs
//! that are not what their digest says.

use std::collections::HashMap;
use std::io::Write as _;

use serde_json::json;

use super::*;
use crate::scan::layers::MemStore;
use crate::scan::oci::{LAYER_TYPES, OCI_INDEX, OCI_MANIFEST};

#[derive(Default)]
struct Mem {
    blobs: HashMap<String, Vec<u8>>,
    root: String,
}

fn sha(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256:{}", crate::attest::hex(d.as_ref()))
}

impl Mem {
    fn add(&mut self, bytes: Vec<u8>) -> (String, u64) {
        let d = sha(&bytes);
        let n = bytes.len() as u64;
        self.blobs.insert(d.clone(), bytes);
        (d, n)
    }

    /// An image manifest over these layers; its descriptor as an index lists it.
    fn image(&mut self, arch: &str, layers: &[Vec<u8>]) -> serde_json::Value {
        let (cd, cn) = self.add(
            json!({"os": "linux", "architecture": arch, "config": {"Env": ["A=1"]}})
                .to_string()
                .into_bytes(),
        );
        let layers: Vec<_> = (layers.iter())
            .map(|l| {
                let (d, n) = self.add(l.clone());
                json!({"mediaType": LAYER_TYPES[1], "digest": d, "size": n})
            })
            .collect();
        let m = json!({"mediaType": OCI_MANIFEST, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn}, "layers": layers});
        let (d, n) = self.add(m.to_string().into_bytes());
        json!({"mediaType": OCI_MANIFEST, "digest": d, "size": n, "platform": {"os": "linux", "architecture": arch}})
    }

    fn index(&mut self, entries: Vec<serde_json::Value>) -> serde_json::Value {
        let i = json!({"mediaType": OCI_INDEX, "manifests": entries});
        let (d, n) = self.add(i.to_string().into_bytes());
        json!({"mediaType": OCI_INDEX, "digest": d, "size": n})
    }
}

impl Source for Mem {
    fn reference(&self) -> String {
        "mem".into()
    }
    fn repository(&self) -> Option<String> {
        None
    }
    fn root(&self) -> Result<(Vec<u8>, String), ImageError> {
        Ok((self.blobs[&self.root].clone(), self.root.clone()))
    }
    /// Unchecked: this source may lie about manifests.
    fn manifest(&self, d: &Descriptor) -> Result<Vec<u8>, ImageError> {
        Ok(self.blobs[&d.digest].clone())
    }
    fn blob(&self, d: &Descriptor) -> Result<Box<dyn Read + '_>, ImageError> {
        let bytes = self.blobs.get(&d.digest).map(Vec::as_slice).unwrap_or(b"");
        Ok(Box::new(Checked::new(bytes, d)?))
    }
}

fn gz_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        b.append_data(&mut h, p, *data).unwrap();
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&b.into_inner().unwrap()).unwrap();
    e.finish().unwrap()
}

fn platforms(r: &Resolved) -> Vec<String> {
    (r.targets.iter())
        .map(|t| t.platform.as_ref().unwrap().to_string())
        .collect()
}

#[test]
fn indexes_resolve_to_their_platforms() {
    let mut m = Mem::default();
    let a = m.image("amd64", &[gz_tar(&[("a", b"a")])]);
    let b = m.image("arm64", &[gz_tar(&[("b", b"b")])]);
    let att = json!({"mediaType": OCI_MANIFEST, "digest": a["digest"], "size": a["size"], "platform": {"os": "unknown", "architecture": "unknown"}});
    let nested = m.index(vec![b.clone()]);
    let top = m.index(vec![a.clone(), att, nested, b.clone()]);
    m.root = top["digest"].as_str().unwrap().into();
    let r = targets(&m, None).unwrap();
    assert!(r.index);
    assert_eq!(platforms(&r), ["linux/amd64", "linux/arm64"]);
    assert!(
        r.targets
            .iter()
            .all(|t| t.index.as_deref() == Some(&*m.root))
    );
    let arm = Platform::parse("linux/arm64").unwrap();
    assert_eq!(
        platforms(&targets(&m, Some(&arm)).unwrap()),
        ["linux/arm64"]
    );
    let e = targets(&m, Some(&Platform::parse("linux/s390x").unwrap())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mem has no platform linux/s390x (it has: linux/amd64, linux/arm64)"
    );
    // An image manifest is its own target.
    m.root = a["digest"].as_str().unwrap().into();
    let r = targets(&m, None).unwrap();
    assert!(!r.index && r.targets[0].index.is_none());
}

#[test]
fn loops_and_deep_nesting_are_refused() {
    let mut m = Mem::default();
    let a = m.image("amd64", &[]);
    // Content addressing makes a real loop impossible; a source that lies can still list
    // an index inside itself.
    let inner = m.index(vec![a.clone()]);
    let outer = m.index(vec![inner.clone()]);
    let outer_digest = outer["digest"].as_str().unwrap().to_string();
    let inner_digest = inner["digest"].as_str().unwrap().to_string();
    let lying = json!({"mediaType": OCI_INDEX, "manifests": [outer, a]});
    m.blobs.insert(inner_digest, lying.to_string().into_bytes());
    m.root = outer_digest;
    let e = targets(&m, None).unwrap_err().to_string();
    assert!(e.contains("a manifest loop, refused"), "{e}");
    let mut m = Mem::default();
    let mut d = m.image("amd64", &[]);
    for _ in 0..=MAX_DEPTH {
        d = m.index(vec![d]);
    }
    m.root = d["digest"].as_str().unwrap().into();
    let e = targets(&m, None).unwrap_err().to_string();
    assert!(e.contains("nested more than 4 deep"), "{e}");
}

#[test]
fn pulls_apply_layers_and_refuse_a_blob_that_is_not_its_digest() {
    let mut m = Mem::default();
    let l1 = gz_tar(&[("bin/x", b"\x7fELF one")]);
    let l2 = gz_tar(&[("bin/y", b"two")]);
    let a = m.image("amd64", &[l1.clone(), l2]);
    m.root = a["digest"].as_str().unwrap().into();
    let r = targets(&m, None).unwrap();
    let t = &r.targets[0];
    let c = config(&m, t).unwrap();
    assert_eq!(
        (c.platform.to_string(), c.env.clone()),
        ("linux/amd64".into(), vec!["A=1".to_string()])
    );
    assert_eq!(
        subject("mem", t, &c).platform.as_deref(),
        Some("linux/amd64")
    );
    let keep = Keep {
        max_file_bytes: 1 << 20,
        paths: vec![],
    };
    let mut store = MemStore::default();
    let mut events = 0;
    let merged = pull(&m, t, &keep, &mut store, &mut |_| events += 1).unwrap();
    assert_eq!(merged.len(), 3);
    assert!(events > 2);
    // The same length, other bytes: the gzip breaks, and the digest is what is reported.
    let d1 = t.manifest.layers[0].digest.clone();
    let mut bad = l1.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    m.blobs.insert(d1.clone(), bad);
    let e = pull(&m, t, &keep, &mut MemStore::default(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, ImageError::Blob(BlobError::Mismatch { .. })),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("blob {d1} does not match its digest")),
        "{e}"
    );
    // Longer than declared: refused as soon as it is.
    let mut long = l1.clone();
    long.extend([0u8; 100]);
    m.blobs.insert(d1.clone(), long);
    let e = pull(&m, t, &keep, &mut MemStore::default(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, ImageError::Blob(BlobError::TooLong { .. })),
        "{e}"
    );
    // A layer that is its digest but no tar: the layer is named.
    let mut m2 = Mem::default();
    let junk = b"\x1f\x8b not really gzip".to_vec();
    let a = m2.image("amd64", &[junk]);
    m2.root = a["digest"].as_str().unwrap().into();
    let t = targets(&m2, None).unwrap().targets.remove(0);
    let e = pull(&m2, &t, &keep, &mut MemStore::default(), &mut |_| {}).unwrap_err();
    assert!(e.to_string().starts_with("layer 1 of 1 (sha256:"), "{e}");
    assert!(e.to_string().contains("gzip"), "{e}");
}
