//! Go build information, as Go's `debug/buildinfo` reads it: the `\xff Go buildinf:` header,
//! the toolchain version and the module information with its `build\tKEY=VALUE` settings.

/// The header that starts the build information (16-byte aligned in the binary).
pub const MAGIC: &[u8] = b"\xff Go buildinf:";

/// Header size: magic, pointer size, flags, padding to 32.
const HEADER: usize = 32;
/// Flags: big-endian pointers; version and module information inline (Go 1.18 on).
const FLAG_BIG_ENDIAN: u8 = 1;
const FLAG_INLINE: u8 = 2;

/// What `go version -m` prints of a binary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.19.8 X:boringcrypto`.
    pub version: String,
    /// The main package path.
    pub path: Option<String>,
    /// `build` settings in order: `-tags`, `CGO_ENABLED`, `GOEXPERIMENT`, `GOFIPS140`,
    /// `DefaultGODEBUG`, ...
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// A build setting's value.
    pub fn setting(&self, key: &str) -> Option<&str> {
        (self.settings.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `(1, 19)` of `go1.19.8 X:boringcrypto`; none for a version that is not a release.
    pub fn release(&self) -> Option<(u32, u32)> {
        let v = self.version.strip_prefix("go")?;
        let mut nums = v.split(|c: char| !c.is_ascii_digit());
        let major = nums.next()?.parse().ok()?;
        let minor = nums.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some((major, minor))
    }

    /// The build tags (`-tags=a,b`).
    pub fn tags(&self) -> Vec<&str> {
        (self.setting("-tags").unwrap_or_default().split(','))
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The experiments the toolchain was built or run with (`GOEXPERIMENT`, and the `X:`
    /// suffix of the version).
    pub fn experiments(&self) -> Vec<&str> {
        let from_version = (self.version.split([' ', '-']))
            .filter_map(|w| w.strip_prefix("X:"))
            .flat_map(|w| w.split(','));
        let from_setting = self.setting("GOEXPERIMENT").unwrap_or_default().split(',');
        from_version
            .chain(from_setting)
            .filter(|e| !e.is_empty())
            .collect()
    }

    /// The `fips140` value of `DefaultGODEBUG` (`on`, `only`, `off`).
    pub fn default_fips140(&self) -> Option<&str> {
        (self.setting("DefaultGODEBUG")?.split(','))
            .find_map(|kv| kv.trim().strip_prefix("fips140="))
    }
}

/// Parses the build information that starts at `blob[0]` (the magic). `at_address` reads
/// `len` bytes at a virtual address, for the pointer format of Go before 1.18.
pub fn parse(blob: &[u8], at_address: &dyn Fn(u64, u64) -> Option<Vec<u8>>) -> Option<BuildInfo> {
    if blob.len() < HEADER || !blob.starts_with(MAGIC) {
        return None;
    }
    let (ptr_size, flags) = (blob[14] as usize, blob[15]);
    let (version, modinfo) = if flags & FLAG_INLINE != 0 {
        let (version, rest) = varint_string(&blob[HEADER..])?;
        let (modinfo, _) = varint_string(rest)?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let big = flags & FLAG_BIG_ENDIAN != 0;
        let ptr = |b: &[u8]| read_uint(b.get(..ptr_size)?, big);
        let string_at = |addr: u64| {
            let header = at_address(addr, 2 * ptr_size as u64)?;
            let (data, len) = (ptr(&header)?, ptr(&header[ptr_size..])?);
            at_address(data, len)
        };
        let version = string_at(ptr(&blob[16..])?)?;
        let modinfo = string_at(ptr(&blob[16 + ptr_size..])?).unwrap_or_default();
        (version, modinfo)
    };
    let version = String::from_utf8(version).ok()?;
    Some(modinfo_lines(version, &modinfo))
}

/// The module information between its 16-byte sentinels, as lines.
fn modinfo_lines(version: String, modinfo: &[u8]) -> BuildInfo {
    let n = modinfo.len();
    let body = if n >= 33 && modinfo[n - 17] == b'\n' {
        &modinfo[16..n - 16]
    } else {
        &[][..]
    };
    let mut info = BuildInfo {
        version,
        ..BuildInfo::default()
    };
    for line in String::from_utf8_lossy(body).lines() {
        let mut f = line.splitn(2, '\t');
        match (f.next(), f.next()) {
            (Some("path"), Some(p)) => info.path = Some(p.to_string()),
            (Some("build"), Some(kv)) => {
                if let Some((k, v)) = split_setting(kv) {
                    info.settings.push((k, v));
                }
            }
            _ => {}
        }
    }
    info
}

/// `KEY=VALUE`, either side possibly quoted as Go's `strconv.Quote` writes it.
fn split_setting(kv: &str) -> Option<(String, String)> {
    let (key, rest) = if kv.starts_with('"') {
        let (k, used) = unquote(kv)?;
        (k, kv[used..].strip_prefix('=')?)
    } else {
        let (k, v) = kv.split_once('=')?;
        (k.to_string(), v)
    };
    let value = match rest.starts_with('"') {
        true => unquote(rest)?.0,
        false => rest.to_string(),
    };
    Some((key, value))
}

/// A Go double-quoted string at the start of `s`: its value and the bytes it took.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn read_uint(b: &[u8], big: bool) -> Option<u64> {
    Some(match (b.len(), big) {
        (4, false) => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
        (4, true) => u64::from(u32::from_be_bytes(b.try_into().ok()?)),
        (8, false) => u64::from_le_bytes(b.try_into().ok()?),
        (8, true) => u64::from_be_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// A uvarint-length-prefixed string and what follows it.
fn varint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (mut len, mut shift, mut used) = (0u64, 0u32, 0usize);
    loop {
        let byte = *b.get(used)?;
        used += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let end = used.checked_add(len)?;
    Some((b.get(used..end)?, &b[end..]))
}

/// The inline build information blob Go 1.18+ writes (for tests).
#[cfg(test)]
pub(crate) fn encode(version: &str, path: &str, settings: &[(&str, &str)]) -> Vec<u8> {
    let mut modinfo = format!("path\t{path}\nmod\t{path}\t(devel)\t\n");
    for (k, v) in settings {
        let v = if v.contains([' ', '"', '=']) {
            format!("{v:?}")
        } else {
            v.to_string()
        };
        modinfo.push_str(&format!("build\t{k}={v}\n"));
    }
    let sentinel = b"0123456789abcdef";
    let mut mi = sentinel.to_vec();
    mi.extend_from_slice(modinfo.as_bytes());
    mi.extend_from_slice(sentinel);
    let mut blob = MAGIC.to_vec();
    blob.extend([8, FLAG_INLINE]);
    blob.resize(HEADER, 0);
    for s in [version.as_bytes(), &mi] {
        let mut n = s.len();
        while n >= 0x80 {
            blob.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        blob.push(n as u8);
        blob.extend_from_slice(s);
    }
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: u64, _: u64) -> Option<Vec<u8>> {
        None
    }

    #[test]
    fn inline_build_information_reads_as_go_version_m() {
        let settings = [
            ("-ldflags", "-s -w"),
            ("-tags", "fipsonly,netgo"),
            ("CGO_ENABLED", "1"),
            ("GOEXPERIMENT", "boringcrypto"),
            ("DefaultGODEBUG", "fips140=on,tlsmlkem=0"),
        ];
        let blob = encode("go1.19.8 X:boringcrypto", "example.com/x", &settings);
        let info = parse(&blob, &none).unwrap();
        assert_eq!(info.version, "go1.19.8 X:boringcrypto");
        assert_eq!(info.path.as_deref(), Some("example.com/x"));
        assert_eq!(info.setting("-ldflags"), Some("-s -w"));
        assert_eq!(info.setting("CGO_ENABLED"), Some("1"));
        assert_eq!(info.tags(), ["fipsonly", "netgo"]);
        assert_eq!(info.experiments(), ["boringcrypto", "boringcrypto"]);
        assert_eq!(info.default_fips140(), Some("on"));
        assert_eq!(info.release(), Some((1, 19)));
        let v126 = BuildInfo {
            version: "go1.26.6-X:boringcrypto".into(),
            ..BuildInfo::default()
        };
        assert_eq!(v126.release(), Some((1, 26)));
        assert_eq!(v126.experiments(), ["boringcrypto"]);
    }

    #[test]
    fn pointer_format_reads_through_addresses() {
        // Go before 1.18: two pointers to string headers, read at virtual addresses.
        let mut blob = MAGIC.to_vec();
        blob.extend([8, 0]);
        blob.extend(0x1000u64.to_le_bytes());
        blob.extend(0x2000u64.to_le_bytes());
        let memory = |addr: u64, len: u64| -> Option<Vec<u8>> {
            let hdr = |p: u64, n: u64| [p.to_le_bytes(), n.to_le_bytes()].concat();
            let bytes = match addr {
                0x1000 => hdr(0x3000, 8),
                0x2000 => hdr(0x4000, 0),
                0x3000 => b"go1.16.2".to_vec(),
                0x4000 => Vec::new(),
                _ => return None,
            };
            Some(bytes[..len as usize].to_vec())
        };
        let info = parse(&blob, &memory).unwrap();
        assert_eq!(info.version, "go1.16.2");
        assert!(info.settings.is_empty());
    }

    #[test]
    fn truncated_or_foreign_bytes_are_not_build_information() {
        let blob = encode("go1.22.1", "x", &[]);
        assert!(parse(&blob[..40], &none).is_none());
        assert!(parse(b"\x7fELF", &none).is_none());
        let mut long = MAGIC.to_vec();
        long.extend([8, FLAG_INLINE]);
        long.resize(HEADER, 0);
        long.extend([0xff; 12]);
        assert!(parse(&long, &none).is_none());
    }
}
