//! Namespace policy: a level per mode, from `fipsgate.io/{enforce,warn,audit}` labels with
//! cluster defaults, modelled on Pod Security Admission.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Label prefix of the per-namespace policy.
pub const LABEL_PREFIX: &str = "fipsgate.io/";

/// How strict a mode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Nothing is checked.
    Off,
    /// `full` or `partial` components; partial ones add a warning naming the exceptions.
    Baseline,
    /// Only `full` components.
    Strict,
}

/// What a violation leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny the request.
    Enforce,
    /// Return warnings to the client.
    Warn,
    /// Record audit annotations.
    Audit,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Enforce, Mode::Warn, Mode::Audit];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }

    /// The namespace label that sets this mode's level.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Enforce => "fipsgate.io/enforce",
            Mode::Warn => "fipsgate.io/warn",
            Mode::Audit => "fipsgate.io/audit",
        }
    }
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Baseline => "baseline",
            Level::Strict => "strict",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Level::Strict),
            "baseline" => Ok(Level::Baseline),
            "off" => Ok(Level::Off),
            _ => Err(format!("invalid level {s:?} (strict, baseline or off)")),
        }
    }
}

/// A level for each mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Levels {
    pub enforce: Level,
    pub warn: Level,
    pub audit: Level,
}

impl Default for Levels {
    /// The built-in defaults: enforce baseline, warn and audit strict.
    fn default() -> Self {
        Self {
            enforce: Level::Baseline,
            warn: Level::Strict,
            audit: Level::Strict,
        }
    }
}

impl Levels {
    pub fn get(&self, mode: Mode) -> Level {
        match mode {
            Mode::Enforce => self.enforce,
            Mode::Warn => self.warn,
            Mode::Audit => self.audit,
        }
    }

    pub fn set(&mut self, mode: Mode, level: Level) {
        match mode {
            Mode::Enforce => self.enforce = level,
            Mode::Warn => self.warn = level,
            Mode::Audit => self.audit = level,
        }
    }

    /// `enforce=baseline,warn=strict,audit=strict`
    pub fn summary(&self) -> String {
        format!(
            "enforce={},warn={},audit={}",
            self.enforce, self.warn, self.audit
        )
    }
}

/// The levels in force for one namespace, and any label errors found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub levels: Levels,
    /// Invalid label values (each evaluated as `strict`).
    pub errors: Vec<String>,
}

impl NamespacePolicy {
    /// Reads the policy labels; absent labels take the defaults, invalid values mean `strict`.
    pub fn from_labels<'a>(
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        defaults: &Levels,
    ) -> Self {
        let mut levels = *defaults;
        let mut errors = Vec::new();
        for (key, value) in labels {
            let Some(mode) = Mode::ALL.into_iter().find(|m| m.label() == key) else {
                continue;
            };
            match value.parse::<Level>() {
                Ok(level) => levels.set(mode, level),
                Err(_) => {
                    levels.set(mode, Level::Strict);
                    errors.push(format!(
                        "invalid value {value:?} for label {key}: evaluated as strict"
                    ));
                }
            }
        }
        Self { levels, errors }
    }

    /// [`Self::from_labels`] over a namespace's label map.
    pub fn from_label_map(
        labels: &std::collections::BTreeMap<String, String>,
        defaults: &Levels,
    ) -> Self {
        Self::from_labels(
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            defaults,
        )
    }

    /// The policy when nothing is known about the namespace: the defaults.
    pub fn defaults(defaults: &Levels) -> Self {
        Self {
            levels: *defaults,
            errors: Vec::new(),
        }
    }
}

/// What a module whose certificate is historical, or still in process, does to an image that
/// relies on it. (A revoked certificate is always a violation.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateAction {
    #[default]
    Warn,
    Deny,
    Ignore,
}

/// Behaviour when an image's status cannot be determined in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LookupFailure {
    /// A violation like any other: denied under enforce, warned under warn.
    #[default]
    Deny,
    /// Never denied: a warning and an audit annotation only.
    Allow,
}

/// What a namespace whose labels cannot be read (look-up failed or timed out) is evaluated as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceFailure {
    /// Every level `strict`, as an invalid label is: a failure never opens the gate.
    #[default]
    Strict,
    /// The configured defaults.
    Defaults,
}

/// What a reference without the digest its evidence rests on meets. A tag is resolved again
/// by every node that pulls it: only the digest binds what runs to what was verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// A violation: the message gives the reference to use (`repo:tag@sha256:…`).
    Require,
    /// A warning with the reference to use.
    #[default]
    Warn,
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    #[test]
    fn labels_table() {
        let d = Levels::default();
        type Case<'a> = (&'a [(&'a str, &'a str)], Levels, usize);
        let cases: &[Case] = &[
            (&[], d, 0),
            (
                &[("fipsgate.io/enforce", "strict")],
                Levels {
                    enforce: Strict,
                    ..d
                },
                0,
            ),
            (
                &[
                    ("fipsgate.io/enforce", "off"),
                    ("fipsgate.io/warn", "baseline"),
                ],
                Levels {
                    enforce: Off,
                    warn: Baseline,
                    ..d
                },
                0,
            ),
            (
                &[("fipsgate.io/audit", "off")],
                Levels { audit: Off, ..d },
                0,
            ),
            (
                &[("fipsgate.io/enforce", "STRICT")],
                Levels {
                    enforce: Strict,
                    ..d
                },
                1,
            ),
            (
                &[("fipsgate.io/enforce", "bogus"), ("fipsgate.io/warn", "")],
                Levels {
                    enforce: Strict,
                    warn: Strict,
                    ..d
                },
                2,
            ),
            (&[("fipsgate.io/other", "x"), ("app", "y")], d, 0),
            (
                &[("pod-security.kubernetes.io/enforce", "restricted")],
                d,
                0,
            ),
        ];
        for (labels, want, errors) in cases {
            let p = NamespacePolicy::from_labels(labels.iter().copied(), &d);
            assert_eq!(p.levels, *want, "{labels:?}");
            assert_eq!(p.errors.len(), *errors, "{labels:?}");
        }
    }

    /// Serde, `Display`, `FromStr` and `as_str` spell every level and mode the same way.
    #[test]
    fn one_spelling_per_value() {
        for l in [Off, Baseline, Strict] {
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
            assert_eq!(l.to_string().parse::<Level>(), Ok(l));
        }
        for m in Mode::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
            assert_eq!(m.label(), format!("{LABEL_PREFIX}{m}"));
        }
    }

    #[test]
    fn invalid_label_error_names_label_and_value() {
        let p = NamespacePolicy::from_labels([("fipsgate.io/warn", "nope")], &Levels::default());
        assert_eq!(
            p.errors,
            ["invalid value \"nope\" for label fipsgate.io/warn: evaluated as strict"]
        );
    }
}
