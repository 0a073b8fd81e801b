//! Jars (zip files): the central directory is read directly, entries inflated with
//! `miniz_oxide` under a size bound. Bouncy Castle's FIPS provider
//! (`BouncyCastleFipsProvider.class`) and its plain provider are looked for, with their
//! versions from `pom.properties` or the manifest; jars nested one level (`BOOT-INF/lib`,
//! `WEB-INF/lib`) are read too.

/// The most an entry may inflate to.
const MAX_ENTRY: usize = 64 << 20;

const FIPS_CLASS: &str = "org/bouncycastle/jcajce/provider/BouncyCastleFipsProvider.class";
const PLAIN_CLASS: &str = "org/bouncycastle/jce/provider/BouncyCastleProvider.class";

/// What a jar holds of Bouncy Castle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JarFacts {
    /// The FIPS provider, with its version when the jar says it.
    pub bc_fips: Option<Option<String>>,
    /// The plain (non-FIPS) provider, with its version.
    pub bcprov: Option<Option<String>>,
    /// Jars inside this one: (entry name, facts).
    pub nested: Vec<(String, JarFacts)>,
}

struct ZipEntry {
    name: String,
    method: u16,
    compressed: usize,
    size: usize,
    local: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The central directory's entries.
fn entries(zip: &[u8]) -> Result<Vec<ZipEntry>, String> {
    let from = zip.len().saturating_sub(22 + 0xffff);
    let eocd = (from..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| zip[i..].starts_with(b"PK\x05\x06"))
        .ok_or("no end of central directory")?;
    let bad = || "malformed central directory".to_string();
    let count = u16_at(zip, eocd + 10).ok_or_else(bad)?;
    let mut at = u32_at(zip, eocd + 16).ok_or_else(bad)?;
    if count == 0xffff || at == 0xffff_ffff {
        return Err("zip64 archives are not read".into());
    }
    let mut out = Vec::with_capacity(count.into());
    for _ in 0..count {
        if !zip.get(at..).is_some_and(|r| r.starts_with(b"PK\x01\x02")) {
            return Err(bad());
        }
        let field = |off| u32_at(zip, at + off).ok_or_else(bad);
        let short = |off| u16_at(zip, at + off).map(usize::from).ok_or_else(bad);
        let (name_len, extra, comment) = (short(28)?, short(30)?, short(32)?);
        let name = zip.get(at + 46..at + 46 + name_len).ok_or_else(bad)?;
        out.push(ZipEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            method: u16_at(zip, at + 10).ok_or_else(bad)?,
            compressed: field(20)?,
            size: field(24)?,
            local: field(42)?,
        });
        at += 46 + name_len + extra + comment;
    }
    Ok(out)
}

/// An entry's contents (stored or deflated), bounded.
fn contents(zip: &[u8], e: &ZipEntry) -> Option<Vec<u8>> {
    if !zip.get(e.local..)?.starts_with(b"PK\x03\x04") || e.size > MAX_ENTRY {
        return None;
    }
    let skip =
        30 + usize::from(u16_at(zip, e.local + 26)?) + usize::from(u16_at(zip, e.local + 28)?);
    let data = zip.get(e.local + skip..e.local + skip + e.compressed)?;
    match e.method {
        0 => Some(data.to_vec()),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_ENTRY).ok(),
        _ => None,
    }
}

/// Reads a jar; nested jars one level down.
pub fn read(zip: &[u8]) -> Result<JarFacts, String> {
    read_at(zip, 0)
}

fn read_at(zip: &[u8], depth: u8) -> Result<JarFacts, String> {
    let entries = entries(zip)?;
    let named = |name: &str| entries.iter().find(|e| e.name == name);
    let text = |e: &ZipEntry| contents(zip, e).map(|b| String::from_utf8_lossy(&b).into_owned());
    let pom_version = |artifact: fn(&str) -> bool| {
        (entries.iter())
            .filter(|e| {
                let rest = e.name.strip_prefix("META-INF/maven/org.bouncycastle/");
                let artifact_name = rest.and_then(|r| r.strip_suffix("/pom.properties"));
                artifact_name.is_some_and(artifact)
            })
            .find_map(|e| property(&text(e)?, "version", '='))
    };
    let manifest = named("META-INF/MANIFEST.MF").and_then(text);
    let manifest_version = || {
        let m = manifest.as_deref()?;
        property(m, "Bundle-Version", ':').or_else(|| property(m, "Implementation-Version", ':'))
    };
    let mut facts = JarFacts::default();
    if named(FIPS_CLASS).is_some() {
        let v = pom_version(|a| a.starts_with("bc-fips")).or_else(manifest_version);
        facts.bc_fips = Some(v);
    }
    if named(PLAIN_CLASS).is_some() {
        let v = pom_version(|a| a.starts_with("bcprov")).or_else(manifest_version);
        facts.bcprov = Some(v);
    }
    if depth == 0 {
        for e in entries.iter().filter(|e| e.name.ends_with(".jar")) {
            if let Some(inner) = contents(zip, e).and_then(|b| read_at(&b, 1).ok()) {
                facts.nested.push((e.name.clone(), inner));
            }
        }
    }
    Ok(facts)
}

/// `key=value` (properties) or `Key: value` (manifest) lines.
fn property(text: &str, key: &str, sep: char) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(sep)?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// A zip of stored entries (for tests).
#[cfg(test)]
pub(crate) fn stored_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let local = out.len() as u32;
        let size = (data.len() as u32).to_le_bytes();
        let name_len = (name.len() as u16).to_le_bytes();
        out.extend(b"PK\x03\x04");
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(size);
        out.extend(size);
        out.extend(name_len);
        out.extend([0, 0]);
        out.extend(name.as_bytes());
        out.extend(*data);
        central.extend(b"PK\x01\x02");
        central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend(size);
        central.extend(size);
        central.extend(name_len);
        central.extend([0; 12]);
        central.extend(local.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let (offset, len) = (out.len() as u32, central.len() as u32);
    out.extend(&central);
    out.extend(b"PK\x05\x06\0\0\0\0");
    let n = (files.len() as u16).to_le_bytes();
    out.extend(n);
    out.extend(n);
    out.extend(len.to_le_bytes());
    out.extend(offset.to_le_bytes());
    out.extend([0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fips_provider_and_its_version_are_found() {
        let jar = stored_zip(&[
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\r\nBundle-Version: 2.0.0\r\n",
            ),
            (FIPS_CLASS, b"\xca\xfe\xba\xbe"),
            (
                "META-INF/maven/org.bouncycastle/bc-fips/pom.properties",
                b"groupId=org.bouncycastle\nversion=2.0.1\n",
            ),
        ]);
        let f = read(&jar).unwrap();
        assert_eq!(f.bc_fips, Some(Some("2.0.1".into())));
        assert_eq!(f.bcprov, None);
        let fat = stored_zip(&[
            ("BOOT-INF/lib/bc-fips-2.0.1.jar", &jar),
            ("app/Main.class", b"x"),
        ]);
        let f = read(&fat).unwrap();
        assert_eq!((f.bc_fips.clone(), f.nested.len()), (None, 1));
        assert_eq!(f.nested[0].0, "BOOT-INF/lib/bc-fips-2.0.1.jar");
        assert_eq!(f.nested[0].1.bc_fips, Some(Some("2.0.1".into())));
    }

    #[test]
    fn the_plain_provider_takes_its_version_from_the_manifest() {
        let jar = stored_zip(&[
            ("META-INF/MANIFEST.MF", b"Implementation-Version: 1.72.0\n"),
            (PLAIN_CLASS, b"x"),
        ]);
        assert_eq!(read(&jar).unwrap().bcprov, Some(Some("1.72.0".into())));
    }

    #[test]
    fn damaged_zips_are_errors_not_panics() {
        let jar = stored_zip(&[(FIPS_CLASS, b"x")]);
        assert!(read(b"PK\x03\x04 not really").is_err());
        for cut in [1, 10, 30, jar.len() / 2] {
            let _ = read(&jar[..jar.len() - cut]);
        }
        let mut bent = jar.clone();
        let n = bent.len();
        bent[n - 6..n - 2].copy_from_slice(&0xfff0u32.to_le_bytes());
        assert!(read(&bent).is_err());
    }
}
