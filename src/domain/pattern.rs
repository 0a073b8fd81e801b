//! Repository name patterns: `us-docker.pkg.dev/palette-images-fips/**/kube-apiserver`.
//!
//! A pattern is matched against a whole normalised repository name (`registry/path`), one path
//! component at a time: `**` stands for zero or more whole components, `*` inside a component for
//! any run of characters within that component. Nothing else is special, so a pattern can never
//! match a longer name that merely starts like it, nor a name under another prefix.

use std::fmt;

/// A compiled repository pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A component glob with at least one `*`, split on the stars.
    Glob(Vec<String>),
    AnyComponents,
}

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: &'static str,
}

impl Pattern {
    /// Compiles a pattern; empty components and `**` mixed with other characters are errors.
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let err = |reason| PatternError {
            pattern: source.to_string(),
            reason,
        };
        if source.is_empty() {
            return Err(err("empty"));
        }
        if source
            .chars()
            .any(|c| c.is_whitespace() || c.is_ascii_uppercase())
        {
            return Err(err("must be lower case without spaces"));
        }
        let mut segments = Vec::new();
        for comp in source.split('/') {
            let seg = match comp {
                "" => return Err(err("empty path component")),
                "**" => Segment::AnyComponents,
                c if c.contains("**") => return Err(err("`**` must be a whole path component")),
                c if c.contains('*') => Segment::Glob(c.split('*').map(str::to_string).collect()),
                c => Segment::Literal(c.to_string()),
            };
            if seg == Segment::AnyComponents && segments.last() == Some(&Segment::AnyComponents) {
                continue;
            }
            segments.push(seg);
        }
        Ok(Self {
            source: source.to_string(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `name` (`registry/path`) matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matches_split(&Components::of(name))
    }

    /// [`Self::matches`] for a name already split (one split for many patterns).
    pub fn matches_split(&self, name: &Components<'_>) -> bool {
        name.all()
            .is_some_and(|comps| match_segments(&self.segments, comps))
    }

    /// How many literal characters the pattern pins down; the most specific match wins.
    pub fn specificity(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len() + 1,
                Segment::Glob(parts) => parts.iter().map(String::len).sum(),
                Segment::AnyComponents => 0,
            })
            .sum()
    }

    /// The first component (the registry) when it is a literal, used to index patterns.
    pub fn first_literal(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(l)) => Some(l),
            _ => None,
        }
    }

    /// The last component when it is a literal, used to index patterns.
    pub fn last_literal(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Literal(l)) => Some(l),
            _ => None,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A name split at `/`, on the stack: names have a handful of components, and this runs per
/// image.
pub struct Components<'a> {
    comps: [&'a str; 32],
    /// How many; `None` when there were more than fit (such a name matches nothing).
    n: Option<usize>,
}

impl<'a> Components<'a> {
    pub fn of(name: &'a str) -> Self {
        let mut comps = [""; 32];
        let mut n = 0;
        for c in name.split('/') {
            let Some(slot) = comps.get_mut(n) else {
                return Self { comps, n: None };
            };
            *slot = c;
            n += 1;
        }
        Self { comps, n: Some(n) }
    }

    fn all(&self) -> Option<&[&'a str]> {
        Some(&self.comps[..self.n?])
    }
}

fn match_segments(segs: &[Segment], comps: &[&str]) -> bool {
    match segs.split_first() {
        None => comps.is_empty(),
        Some((Segment::AnyComponents, rest)) => {
            (0..=comps.len()).any(|skip| match_segments(rest, &comps[skip..]))
        }
        Some((seg, rest)) => match comps.split_first() {
            Some((c, crest)) => match_component(seg, c) && match_segments(rest, crest),
            None => false,
        },
    }
}

fn match_component(seg: &Segment, comp: &str) -> bool {
    match seg {
        Segment::Literal(l) => l == comp,
        Segment::Glob(parts) => glob(parts, comp),
        Segment::AnyComponents => true,
    }
}

/// `parts` are the pieces between stars: the first must be a prefix, the last a suffix, the
/// others appear in order.
fn glob(parts: &[String], s: &str) -> bool {
    let (first, last) = (&parts[0], &parts[parts.len() - 1]);
    if s.len() < first.len() + last.len() || !s.starts_with(first.as_str()) {
        return false;
    }
    if !s.ends_with(last.as_str()) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid.as_str()) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let root = "us-docker.pkg.dev/palette-images-fips";
        let cases: &[(&str, &str, bool)] = &[
            ("a.io/x/**/kube-apiserver", "a.io/x/kube-apiserver", true),
            (
                "a.io/x/**/kube-apiserver",
                "a.io/x/k8s/kube-apiserver",
                true,
            ),
            (
                "a.io/x/**/kube-apiserver",
                "a.io/x/a/b/c/kube-apiserver",
                true,
            ),
            (
                "a.io/x/**/kube-apiserver",
                "a.io/x/k8s/kube-apiserver-evil",
                false,
            ),
            (
                "a.io/x/**/kube-apiserver",
                "a.io/x/k8s/evil-kube-apiserver",
                false,
            ),
            ("a.io/x/**/kube-apiserver", "a.io/xx/kube-apiserver", false),
            ("a.io/x/**/kube-apiserver", "b.io/x/kube-apiserver", false),
            (
                "a.io/x/**/kube-apiserver",
                "evil.io/a.io/x/kube-apiserver",
                false,
            ),
            (
                "a.io/x/**/kube-apiserver",
                "a.io/x/kube-apiserver/extra",
                false,
            ),
            ("a.io/*/calico-*", "a.io/org/calico-node", true),
            ("a.io/*/calico-*", "a.io/org/sub/calico-node", false),
            ("a.io/*/calico-*", "a.io/org/calico", false),
            ("a.io/x/*-fips", "a.io/x/nginx-fips", true),
            ("a.io/x/*-fips", "a.io/x/nginx-fips-not", false),
            ("a.io/x/a*b*c", "a.io/x/abc", true),
            ("a.io/x/a*b*c", "a.io/x/axxbyyc", true),
            ("a.io/x/a*b*c", "a.io/x/acb", false),
            ("**", "anything/at/all", true),
            ("a.io/**/**/z", "a.io/z", true),
        ];
        for (p, name, want) in cases {
            assert_eq!(
                Pattern::new(p).unwrap().matches(name),
                *want,
                "{p} vs {name}"
            );
        }
        let p = Pattern::new(&format!("{root}/**/coredns")).unwrap();
        assert!(p.matches(&format!("{root}/k8s/coredns")));
        assert!(!p.matches("docker.io/palette-images-fips/coredns"));
    }

    #[test]
    fn invalid() {
        for p in ["", "a//b", "a/***/b", "a/b**", "A/b", "a b"] {
            assert!(Pattern::new(p).is_err(), "{p}");
        }
    }

    #[test]
    fn specificity_prefers_literals() {
        let a = Pattern::new("r.io/**/longhornio/csi-attacher").unwrap();
        let b = Pattern::new("r.io/**/csi-attacher").unwrap();
        assert!(a.specificity() > b.specificity());
        assert_eq!(b.last_literal(), Some("csi-attacher"));
        assert_eq!(Pattern::new("r.io/*-x").unwrap().last_literal(), None);
    }
}
