//! `attestations.registries`: the registries fipsgate may contact, as `host[:port]` or
//! `*.example.com[:port]` (any subdomain, never the domain itself). An empty list allows any.

use std::fmt;

use crate::domain::image::{ImageRef, is_registry_host};

/// The registries fipsgate may contact; empty: any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedRegistries {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// `host[:port]`, lower-case, Docker Hub's aliases as `docker.io`.
    Exact(String),
    /// `*.example.com[:port]`: `suffix` is `.example.com`.
    Subdomains {
        suffix: String,
        port: Option<String>,
    },
}

impl AllowedRegistries {
    /// Compiles the entries; each error names the entry and what is wrong with it.
    pub fn new(entries: &[String]) -> Result<Self, String> {
        let entries = entries
            .iter()
            .map(|e| Entry::parse(e))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// True when the list is empty: every registry may be contacted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// May `registry` (`host[:port]`, as an image reference names it) be contacted?
    pub fn allows(&self, registry: &str) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let registry = registry.to_ascii_lowercase();
        let (host, port) = split_port(&registry);
        self.entries.iter().any(|e| match e {
            Entry::Exact(h) => *h == registry,
            Entry::Subdomains { suffix, port: p } => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str()) && *p == port
            }
        })
    }
}

impl fmt::Display for AllowedRegistries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match e {
                Entry::Exact(h) => f.write_str(h)?,
                Entry::Subdomains { suffix, port } => {
                    write!(f, "*{suffix}")?;
                    if let Some(p) = port {
                        write!(f, ":{p}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Entry {
    fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{entry:?}: {why}");
        if entry.is_empty() {
            return Err(bad("an entry is empty"));
        }
        if entry.contains("://") {
            return Err(bad("a registry is host[:port], without a scheme"));
        }
        if entry.contains('/') {
            return Err(bad("a registry is host[:port], without a path"));
        }
        let (wildcard, host) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if host.contains('*') {
            return Err(bad(
                "`*` may only stand for the first labels, as in *.example.com",
            ));
        }
        if wildcard && host.starts_with('[') {
            return Err(bad("an IP address has no subdomains"));
        }
        // A subdomain pattern is checked as one of its hosts would be.
        let probe = if wildcard {
            format!("x.{host}")
        } else {
            host.to_string()
        };
        if !is_registry_host(&probe) {
            return Err(bad(
                "not a registry host: it needs a dot or a port, or is localhost",
            ));
        }
        let parsed = ImageRef::parse(&format!("{probe}/x")).map_err(|e| bad(&e.to_string()))?;
        let host = if wildcard { host } else { parsed.registry() }.to_ascii_lowercase();
        Ok(if wildcard {
            let (name, port) = split_port(&host);
            Entry::Subdomains {
                suffix: format!(".{name}"),
                port,
            }
        } else {
            Entry::Exact(host)
        })
    }
}

/// `host:port` → (`host`, `Some(port)`); a bracketed IPv6 address keeps its brackets.
fn split_port(registry: &str) -> (&str, Option<String>) {
    let after_host = registry.rfind(']').map_or(0, |i| i + 1);
    match registry[after_host..].find(':') {
        Some(i) => (
            &registry[..after_host + i],
            Some(registry[after_host + i + 1..].to_string()),
        ),
        None => (registry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedRegistries {
        AllowedRegistries::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn entries_match_exactly_or_by_subdomain() {
        let l = list(&[
            "registry.example.com",
            "mirror.local:5000",
            "*.pkg.dev",
            "*.corp.io:8443",
            "index.docker.io",
            "[::1]:5000",
        ]);
        for ok in [
            "registry.example.com",
            "Registry.Example.com",
            "mirror.local:5000",
            "us-docker.pkg.dev",
            "a.b.pkg.dev",
            "r.corp.io:8443",
            "docker.io",
            "[::1]:5000",
        ] {
            assert!(l.allows(ok), "{ok}");
        }
        for no in [
            "registry.example.com:5000",
            "evil-registry.example.com",
            "example.com",
            "mirror.local",
            "mirror.local:5001",
            "pkg.dev",
            "evilpkg.dev",
            "pkg.dev.evil.io",
            "r.corp.io",
            "r.corp.io:443",
            "ghcr.io",
            "[::1]:5001",
        ] {
            assert!(!l.allows(no), "{no}");
        }
        assert!(AllowedRegistries::default().allows("anything.io"));
        assert_eq!(
            l.to_string(),
            "registry.example.com, mirror.local:5000, *.pkg.dev, *.corp.io:8443, docker.io, [::1]:5000"
        );
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("https://r.io", "without a scheme"),
            ("r.io/team", "without a path"),
            ("*", "first labels"),
            ("*.", "invalid registry host"),
            ("r.*.io", "first labels"),
            ("*.*.io", "first labels"),
            ("registry", "needs a dot or a port"),
            ("r.io:port", "invalid registry host"),
            ("-r.io", "invalid registry host"),
            ("r .io", "whitespace"),
            ("*.[::1]", "IP address"),
        ];
        for (entry, why) in cases {
            let e = AllowedRegistries::new(&[entry.to_string()]).unwrap_err();
            assert!(e.contains(why), "{entry:?}: {e}");
            assert!(e.starts_with(&format!("{entry:?}")), "{entry:?}: {e}");
        }
    }
}
