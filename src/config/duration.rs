//! Durations as Go writes them (`5s`, `1m30s`, `250ms`): in the configuration, on the command
//! line and in the API server's `?timeout=`.

/// Parses a Go duration (`5s`, `1m30s`, `250ms`); negative and unit-less values are refused.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 5s, 250ms, 1m30s)");
    if s.is_empty() || s.len() > 32 {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        let ok = [
            ("5s", 5000),
            ("250ms", 250),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("0s", 0),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        for s in ["", "5", "s", "5x", "-1s", "1e9h"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
