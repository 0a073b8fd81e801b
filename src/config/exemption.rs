//! One exemption entry of the configuration: a name (or image pattern) alone, open-ended, or
//! a map that says why, under which ticket and until when:
//!
//! ```yaml
//! namespaces:
//!   - kube-system
//!   - {name: legacy-billing, reason: "vendor rebuild", ticket: POAM-0042, expires: 2027-03-31}
//! ```

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::Grant;

/// An exemption as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExemptionEntry(pub Grant);

impl From<&str> for ExemptionEntry {
    fn from(name: &str) -> Self {
        Self(Grant::open(name))
    }
}

/// The map form (`image` is another spelling of `name`, for image patterns).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Full {
    #[serde(alias = "image")]
    name: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ticket: Option<String>,
    /// The last day it exempts.
    #[serde(default)]
    expires: Option<jiff::civil::Date>,
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = ExemptionEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name, or a map of name (or image), reason, ticket and expires (YYYY-MM-DD)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.to_string().as_str().into())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
        if f.name.trim().is_empty() {
            return Err(de::Error::custom("an exemption needs a name"));
        }
        Ok(ExemptionEntry(Grant {
            name: f.name,
            reason: f.reason,
            ticket: f.ticket,
            expires: f.expires,
        }))
    }
}

impl<'de> Deserialize<'de> for ExemptionEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

impl Serialize for ExemptionEntry {
    /// The name alone when that is all there is, else the map.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = &self.0;
        if g.reason.is_none() && g.ticket.is_none() && g.expires.is_none() {
            return s.serialize_str(&g.name);
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &g.name)?;
        if let Some(r) = &g.reason {
            m.serialize_entry("reason", r)?;
        }
        if let Some(t) = &g.ticket {
            m.serialize_entry("ticket", t)?;
        }
        if let Some(e) = &g.expires {
            m.serialize_entry("expires", &e.to_string())?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_alone_or_maps() {
        let text = "- kube-system\n- 42\n- {name: legacy, reason: rebuild, ticket: POAM-1, expires: 2027-03-31}\n- {image: \"registry.io/tools/**\", expires: 2026-12-01}\n";
        let v: Vec<ExemptionEntry> = serde_saphyr::from_str(text).unwrap();
        let names: Vec<&str> = v.iter().map(|e| e.0.name.as_str()).collect();
        assert_eq!(
            names,
            ["kube-system", "42", "legacy", "registry.io/tools/**"]
        );
        assert_eq!(v[2].0.expires, Some(jiff::civil::date(2027, 3, 31)));
        assert_eq!(v[2].0.ticket.as_deref(), Some("POAM-1"));
        // Written back as read.
        let again: Vec<ExemptionEntry> =
            serde_saphyr::from_str(&serde_saphyr::to_string(&v).unwrap()).unwrap();
        assert_eq!(again, v);
        assert_eq!(serde_json::to_string(&v[0]).unwrap(), "\"kube-system\"");
        for bad in [
            "- {name: a, expires: 2027-02-30}",
            "- {name: a, expiry: 2027-01-01}",
            "- {reason: nothing named}",
            "- {name: \" \"}",
            "- [a, b]",
        ] {
            assert!(
                serde_saphyr::from_str::<Vec<ExemptionEntry>>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
