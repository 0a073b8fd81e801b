//! The engine's wording: why an image fails, the denial message, warnings kept short.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::domain::fips::Status;

use super::{Classification, Subject};

/// Warnings longer than this are shortened where possible.
pub const WARNING_BUDGET: usize = 120;

/// Why an image that is not exempt fails (or would fail) a level.
pub(super) fn reason_of(cl: &Classification) -> String {
    match cl {
        Classification::Invalid(e) => format!("has an invalid image reference: {e}"),
        Classification::Exempt => "is exempt".into(),
        Classification::Assessed(a) => match a.status() {
            Status::Unknown => format!(
                "has an unknown FIPS status: {}",
                a.problem().unwrap_or("look-up failed")
            ),
            Status::None => match a.problem() {
                Some(p) if a.scan().is_some() => format!("is not FIPS-compliant: {p}"),
                Some(p) => format!("is not a FIPS-compliant component ({p})"),
                None => "is not a FIPS-compliant component".into(),
            },
            s => format!("is {s}"),
        },
    }
}

/// `Pod "p" violates the strict FIPS policy of namespace "ns" (1 of 2 containers): ...`
pub(super) fn denial(
    subject: &Subject<'_>,
    enforce: impl std::fmt::Display,
    denials: &[String],
    total: usize,
) -> String {
    format!(
        "{} {:?} violates the {} FIPS policy of namespace {:?} ({} of {total} container{}): {}",
        subject.kind,
        subject.name,
        enforce,
        subject.namespace,
        denials.len(),
        if total == 1 { "" } else { "s" },
        denials.join("; ")
    )
}

/// Shortens a warning to [`WARNING_BUDGET`] by eliding the middle of the longest quoted image.
pub(super) fn shorten(s: &str) -> String {
    if s.chars().count() <= WARNING_BUDGET {
        return s.to_string();
    }
    // Elide inside the first parenthesised image, keeping its start and end.
    if let (Some(open), Some(close)) = (s.find('('), s.find(')'))
        && close > open
    {
        let image = &s[open + 1..close];
        let excess = s.chars().count() - WARNING_BUDGET + 1;
        let chars: Vec<char> = image.chars().collect();
        // The registry host stays whole: it is what tells a FIPS root from a look-alike.
        let registry = image.find('/').map_or(0, |i| image[..=i].chars().count());
        if chars.len() > excess + 16 && chars.len() - excess >= registry + 8 {
            let keep = chars.len() - excess;
            let head_len = (keep / 2).max(registry);
            let head: String = chars[..head_len].iter().collect();
            let tail: String = chars[chars.len() - (keep - head_len)..].iter().collect();
            let mut out = String::with_capacity(s.len());
            let _ = write!(out, "{}({head}…{tail}){}", &s[..open], &s[close + 1..]);
            return out;
        }
    }
    s.to_string()
}

/// Drops repeated lines, keeping the first of each.
pub(super) fn dedup(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_image_keeps_its_registry() {
        // A 40-character host: half of what is kept would cut it.
        let host = "fips-mirror.long-registry-name.internal";
        let image = format!("{host}/{}/controller:v1.13.7", "deep/".repeat(12));
        let warning =
            format!("[strict] container \"c\" ({image}): is not a FIPS-compliant component");
        let short = shorten(&warning);
        assert!(short.chars().count() <= WARNING_BUDGET, "{short}");
        assert!(short.contains(&format!("({host}/")), "{short}");
        assert!(short.contains('…') && short.contains("v1.13.7)"), "{short}");
        // A registry longer than the room left: not shortened rather than cut.
        let host = format!("{}.example.com", "r".repeat(120));
        let long =
            format!("[strict] container \"c\" ({host}/x/y:1): is not a FIPS-compliant component");
        assert_eq!(shorten(&long), long);
    }
}
