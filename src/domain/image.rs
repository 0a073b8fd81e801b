//! Container image references: parsing and normalisation.
//!
//! Follows the grammar of the distribution project (`docker.io/library/nginx:latest`): an
//! optional registry (a first path component with a `.` or `:` in it, or `localhost`), a
//! lower-case repository path, an optional tag and an optional digest. Parsing never panics;
//! every rejection says why.

use std::fmt;

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;
/// References longer than this are refused before any parsing.
pub const MAX_REFERENCE_LEN: usize = 4096;

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `registry/repository`, kept whole: catalogue matching reads it for every image.
    name: String,
    /// Where the registry ends in `name`.
    registry_len: usize,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A content digest such as `sha256:<64 hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a reference could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference is longer than {MAX_REFERENCE_LEN} characters")]
    TooLong,
    #[error("image reference contains whitespace or control characters")]
    Whitespace,
    #[error("repository name must be lowercase")]
    Uppercase,
    #[error("invalid registry host {0:?}")]
    Registry(String),
    #[error("invalid repository path component {0:?}")]
    Component(String),
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    NameTooLong,
    #[error("invalid tag {0:?}")]
    Tag(String),
    #[error("invalid digest {0:?}")]
    Digest(String),
}

impl Digest {
    /// Parses `algorithm:hex` for the algorithms registries and runtimes verify: the OCI
    /// image spec's `sha256`, `sha512` and `blake3`, and `sha384` (go-digest's, which
    /// containerd and the kubelet use); lower-case hex of the algorithm's length.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let bad = || ReferenceError::Digest(s.to_string());
        let (alg, hex) = s.split_once(':').ok_or_else(bad)?;
        let want = match alg {
            "sha256" | "blake3" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(bad()),
        };
        let not_hex = hex.bytes().fold(false, |acc, b| {
            acc | !matches!(b, b'0'..=b'9' | b'a'..=b'f')
        });
        if hex.len() != want || not_hex {
            return Err(bad());
        }
        Ok(Self(s.to_string()))
    }

    /// The digest as written, `sha256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl ImageRef {
    /// Parses and normalises a reference: `nginx` becomes `docker.io/library/nginx:latest`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.len() > MAX_REFERENCE_LEN {
            return Err(ReferenceError::TooLong);
        }
        // One branch-free pass over the bytes (it vectorises) clears the usual printable-ASCII
        // reference; only the rest is looked at character by character.
        let unusual = input
            .bytes()
            .fold(false, |acc, c| acc | (c <= b' ') | (c >= 0x7f));
        if unusual && input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Whitespace);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (input, None),
        };
        // A tag is the part after the last ':' that has no '/' after it (a ':' before a '/'
        // belongs to a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let (registry, path) = split_registry(name)?;
        validate_path(path)?;
        let registry = canonical_registry(registry);
        let library = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            "library/"
        } else {
            ""
        };
        let len = registry.len() + 1 + library.len() + path.len();
        if len > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong);
        }
        let mut full = String::with_capacity(len);
        for part in [registry, "/", library, path] {
            full.push_str(part);
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            name: full,
            registry_len: registry.len(),
            tag,
            digest,
        })
    }

    /// Registry host (with port), e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.name[..self.registry_len]
    }

    /// Repository path inside the registry, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.name[self.registry_len + 1..]
    }

    /// The tag, when the reference has one (`latest` is filled in when neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the name that catalogue patterns match.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Tag(tag.to_string()))
    }
}

/// True when the first component of a name is a registry host: it has a `.` or a `:`, or is
/// `localhost` (`nginx/nginx` is a Docker Hub path, `r.io/nginx` a registry's).
pub fn is_registry_host(first_component: &str) -> bool {
    first_component.contains('.') || first_component.contains(':') || first_component == "localhost"
}

/// Docker Hub's aliases as the one name references use: `index.docker.io` and
/// `registry-1.docker.io` are `docker.io`.
pub fn canonical_registry(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY,
        h => h,
    }
}

/// Splits `name` into registry and path; see [`is_registry_host`].
fn split_registry(name: &str) -> Result<(&str, &str), ReferenceError> {
    match name.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => {
            validate_registry(first)?;
            Ok((first, rest))
        }
        _ => Ok((DEFAULT_REGISTRY, name)),
    }
}

fn validate_registry(host: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::Registry(host.to_string());
    let (h, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return Err(bad());
        }
        match after {
            "" => ("", None),
            p => ("", Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    if !host.starts_with('[') {
        let label_ok = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        };
        if !h.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), ReferenceError> {
    for comp in path.split('/') {
        if comp.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase);
        }
        if !valid_component(comp) {
            return Err(ReferenceError::Component(comp.to_string()));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|&x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_digest_algorithm() {
        let ok = [
            ("sha256", 64),
            ("blake3", 64),
            ("sha384", 96),
            ("sha512", 128),
        ];
        for (alg, n) in ok {
            let d = format!("{alg}:{}", "a".repeat(n));
            assert_eq!(Digest::parse(&d).map(|d| d.to_string()), Ok(d.clone()));
            let r = ImageRef::parse(&format!("r.io/x@{d}")).unwrap();
            assert_eq!(r.digest().map(Digest::as_str), Some(d.as_str()));
            for bad in [n - 1, n + 1] {
                assert!(Digest::parse(&format!("{alg}:{}", "a".repeat(bad))).is_err());
            }
        }
        for bad in [
            "md5:".to_string() + &"a".repeat(32),
            format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
    }
    use proptest::prelude::*;

    const D: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    #[test]
    fn normalises() {
        let cases: &[(&str, &str)] = &[
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("library/nginx", "docker.io/library/nginx:latest"),
            ("docker.io/nginx", "docker.io/library/nginx:latest"),
            ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
            ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
            ("localhost/foo", "localhost/foo:latest"),
            ("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"),
            (
                "registry.k8s.io/coredns/coredns:v1.11.1",
                "registry.k8s.io/coredns/coredns:v1.11.1",
            ),
            ("[::1]:5000/img", "[::1]:5000/img:latest"),
            ("a.b-c.io/x__y/z--w.v", "a.b-c.io/x__y/z--w.v:latest"),
        ];
        for (input, want) in cases {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *want, "{input}");
        }
    }

    #[test]
    fn tag_and_digest() {
        let r = ImageRef::parse(&format!("gcr.io/spectro-images-fips/coredns:v1@{D}")).unwrap();
        assert_eq!(r.registry(), "gcr.io");
        assert_eq!(r.repository(), "spectro-images-fips/coredns");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().unwrap().as_str(), D);
        let only = ImageRef::parse(&format!("nginx@{D}")).unwrap();
        assert_eq!(only.tag(), None);
        assert_eq!(only.to_string(), format!("docker.io/library/nginx@{D}"));
        let port = ImageRef::parse(&format!("reg:5000/a/b:t@{D}")).unwrap();
        assert_eq!((port.registry(), port.tag()), ("reg:5000", Some("t")));
    }

    #[test]
    fn rejects() {
        let cases: &[(&str, ReferenceError)] = &[
            ("", ReferenceError::Empty),
            ("Nginx", ReferenceError::Uppercase),
            ("nginx:", ReferenceError::Tag(String::new())),
            ("nginx:-x", ReferenceError::Tag("-x".into())),
            (
                "nginx@sha256:abc",
                ReferenceError::Digest("sha256:abc".into()),
            ),
            ("nginx@md5:abc", ReferenceError::Digest("md5:abc".into())),
            ("a//b", ReferenceError::Component(String::new())),
            ("a/b/", ReferenceError::Component(String::new())),
            ("-a", ReferenceError::Component("-a".into())),
            ("a..b", ReferenceError::Component("a..b".into())),
            ("a___b", ReferenceError::Component("a___b".into())),
            ("ng inx", ReferenceError::Whitespace),
            (
                "bad_host.io:x/a",
                ReferenceError::Registry("bad_host.io:x".into()),
            ),
            (
                "host.io:123456/a",
                ReferenceError::Registry("host.io:123456".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ImageRef::parse(input).unwrap_err(), *want, "{input:?}");
        }
        assert_eq!(
            ImageRef::parse(&"a".repeat(5000)).unwrap_err(),
            ReferenceError::TooLong
        );
        assert_eq!(
            ImageRef::parse(&format!("x.io/{}", "a".repeat(260))).unwrap_err(),
            ReferenceError::NameTooLong
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = ImageRef::parse(&s);
        }

        #[test]
        fn never_panics_on_reference_alphabet(s in "[a-zA-Z0-9:/@._\\-\\[\\]]{0,80}") {
            let _ = ImageRef::parse(&s);
        }

        #[test]
        fn normal_form_is_a_fixed_point(
            reg in proptest::option::of("[a-z][a-z0-9]{0,8}\\.(io|com)(:[0-9]{1,4})?"),
            // A first component with a '.' would be a registry host: dots only further down.
            path in "[a-z0-9]{1,8}((_|__|-)[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}(\\.[a-z0-9]{1,3})?){0,3}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let mut s = match &reg { Some(r) => format!("{r}/{path}"), None => path.clone() };
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            if let Some(d) = &digest { s.push_str("@sha256:"); s.push_str(d); }
            let r = ImageRef::parse(&s).unwrap();
            let again = ImageRef::parse(&r.to_string()).unwrap();
            prop_assert_eq!(&r, &again);
            prop_assert_eq!(r.tag(), tag.as_deref().or(if digest.is_some() { None } else { Some("latest") }));
            prop_assert_eq!(r.digest().map(|d| d.as_str()[7..].to_string()), digest);
        }
    }
}
