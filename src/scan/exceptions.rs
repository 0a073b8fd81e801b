//! Exceptions as data: which failures an image may keep (by repository or component, path
//! or directory glob, and error name), loaded from YAML, and the entries that would accept
//! what a scan found.

use serde::{Deserialize, Serialize};

use super::{ErrorName, Finding, Report, Verdict};

/// The image a scan is of, as exceptions name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// `registry.example.com/team/app`.
    pub repository: Option<String>,
    /// A catalogue component id.
    pub component: Option<String>,
}

/// One accepted failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exception {
    /// Only for images of this repository (`*` and `**` globs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Only for images of this catalogue component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Absolute paths or globs: `*` within a component, `**` across components, a trailing
    /// `/` for everything under a directory.
    pub paths: Vec<String>,
    /// Only this error (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorName>,
    /// Why it is acceptable (printed beside the finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An exceptions file: `exceptions: [...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    pub exceptions: Vec<Exception>,
}

/// Why an exceptions file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionsError {
    #[error("exceptions: {0}")]
    Parse(String),
    #[error("exception {index}: {reason}")]
    Invalid { index: usize, reason: String },
}

impl Exceptions {
    /// Parses and checks an exceptions file.
    pub fn from_yaml(text: &str) -> Result<Self, ExceptionsError> {
        let parsed: Self =
            serde_saphyr::from_str(text).map_err(|e| ExceptionsError::Parse(e.to_string()))?;
        for (i, e) in parsed.exceptions.iter().enumerate() {
            let invalid = |reason: &str| ExceptionsError::Invalid {
                index: i + 1,
                reason: reason.into(),
            };
            if e.paths.is_empty() {
                return Err(invalid("paths: at least one path or glob"));
            }
            if let Some(p) = e.paths.iter().find(|p| !p.starts_with('/')) {
                return Err(invalid(&format!("path {p:?} must be absolute")));
            }
        }
        Ok(parsed)
    }

    /// Marks the findings an exception accepts (FAIL, WARN and UNKNOWN only).
    pub fn apply(&self, subject: &Subject, findings: &mut [Finding]) {
        let mine: Vec<(usize, &Exception)> = (self.exceptions.iter().enumerate())
            .filter(|(_, e)| e.applies_to(subject))
            .collect();
        for f in findings.iter_mut() {
            if matches!(f.verdict, Verdict::Pass | Verdict::NotApplicable) {
                continue;
            }
            let hit = mine.iter().find(|(_, e)| {
                e.error.is_none_or(|err| Some(err) == f.error)
                    && e.paths.iter().any(|p| glob(p, &f.path))
            });
            if let Some((i, e)) = hit {
                f.exception = Some(
                    e.reason
                        .clone()
                        .unwrap_or_else(|| format!("exception {}", i + 1)),
                );
            }
        }
    }
}

impl Exception {
    fn applies_to(&self, s: &Subject) -> bool {
        let repo = match (&self.repository, &s.repository) {
            (None, _) => true,
            (Some(p), Some(r)) => glob(p, r),
            (Some(_), None) => false,
        };
        repo && self
            .component
            .as_ref()
            .is_none_or(|c| s.component.as_ref() == Some(c))
    }
}

/// Ready-to-paste entries accepting every finding of `report` that keeps it from `full` and
/// is not accepted yet: one entry per error name.
pub fn suggest(report: &Report, subject: &Subject) -> Exceptions {
    let mut out: Vec<Exception> = Vec::new();
    let open = (report.findings.iter()).filter(|f| {
        f.exception.is_none()
            && matches!(f.verdict, Verdict::Fail | Verdict::Warn | Verdict::Unknown)
    });
    for f in open {
        match out.iter_mut().find(|e| e.error == f.error) {
            Some(e) => e.paths.push(f.path.clone()),
            None => out.push(Exception {
                repository: subject.repository.clone(),
                component: subject.component.clone(),
                paths: vec![f.path.clone()],
                error: f.error,
                reason: Some(format!("{} (say why this is acceptable)", f.reason)),
            }),
        }
    }
    Exceptions { exceptions: out }
}

/// Whether `path` matches the glob: `*` and `?` within a component, `**` any number of
/// components, a trailing `/` everything under.
pub fn glob(pattern: &str, path: &str) -> bool {
    let pattern = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern.to_string(),
    };
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    components(&p, &s)
}

fn components(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|k| components(rest, &s[k..])),
        Some((first, rest)) => {
            s.first()
                .is_some_and(|c| component(first.as_bytes(), c.as_bytes()))
                && components(rest, &s[1..])
        }
    }
}

fn component(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| component(rest, &s[k..])),
        Some((b'?', rest)) => !s.is_empty() && component(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && component(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_components() {
        assert!(glob("/usr/bin/*", "/usr/bin/openssl"));
        assert!(!glob("/usr/bin/*", "/usr/bin/x/openssl"));
        assert!(glob("/usr/lib/**/*.so", "/usr/lib/x/y/z.so"));
        assert!(glob("/usr/lib/**/*.so", "/usr/lib/z.so"));
        assert!(glob("/usr/lib/apt/", "/usr/lib/apt/methods/http"));
        assert!(!glob("/usr/lib/apt/", "/usr/lib/aptitude"));
        assert!(glob(
            "/opt/app.jar!/BOOT-INF/lib/*.jar",
            "/opt/app.jar!/BOOT-INF/lib/bc.jar"
        ));
        assert!(glob("/bin/busybox?", "/bin/busybox1"));
        assert!(!glob("/bin/busybox", "/bin/busybox1"));
        assert!(glob(
            "registry.example.com/**/kube-proxy",
            "registry.example.com/k8s/kube-proxy"
        ));
    }

    #[test]
    fn exceptions_parse_and_refuse_relative_paths() {
        let text = "exceptions:\n  - component: kube-proxy\n    paths: [/usr/sbin/]\n    error: NotDynLinked\n    reason: iptables tools\n";
        let e = Exceptions::from_yaml(text).unwrap();
        assert_eq!(e.exceptions[0].error, Some(ErrorName::NotDynLinked));
        let bad = text.replace("/usr/sbin/", "usr/sbin");
        assert!(
            Exceptions::from_yaml(&bad)
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
        let unknown = text.replace("NotDynLinked", "NoSuchError");
        assert!(Exceptions::from_yaml(&unknown).is_err());
        assert!(Exceptions::from_yaml("exceptions:\n  - paths: []\n").is_err());
    }

    #[test]
    fn an_exception_needs_its_repository_or_component() {
        let e = Exception {
            repository: Some("reg.example.com/**/app".into()),
            component: None,
            paths: vec!["/".into()],
            error: None,
            reason: None,
        };
        let subject = |r: Option<&str>| Subject {
            repository: r.map(str::to_string),
            component: None,
        };
        assert!(e.applies_to(&subject(Some("reg.example.com/team/app"))));
        assert!(!e.applies_to(&subject(Some("reg.example.com/team/other"))));
        assert!(!e.applies_to(&subject(None)));
    }
}
