//! OpenSSL 3's FIPS provider: its identity in `fips.so`, the `module-mac` that
//! `openssl fipsinstall` writes (HMAC-SHA256 of `fips.so` under OpenSSL's default FIPS key),
//! and whether the effective `openssl.cnf` activates it.

use std::collections::BTreeMap;

use memchr::memmem;

use super::markers::version_at;

/// OpenSSL's default FIPS HMAC key (`FIPS_KEY_STRING`), the key of `module-mac`.
pub const DEFAULT_FIPS_KEY: &str =
    "f4556650ac31d35461610bac4ed81b1a181b2d8a43ea2854cbae22ca74560813";

/// Where OpenSSL builds look for `openssl.cnf` (their `OPENSSLDIR`), most common first:
/// Debian and Ubuntu, Red Hat, Alpine and SUSE, a source build.
pub const DEFAULT_CONFIGS: &[&str] = &[
    "/usr/lib/ssl/openssl.cnf",
    "/etc/pki/tls/openssl.cnf",
    "/etc/ssl/openssl.cnf",
    "/usr/local/ssl/openssl.cnf",
];

/// Who built a `fips.so` and which version it says it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// `3.0.9`, from the string after the provider's name.
    pub version: Option<String>,
    /// Red Hat's build, which checks a MAC embedded in `fips.so` itself.
    pub red_hat: bool,
}

/// Reads the provider's name and version strings (`OpenSSL FIPS Provider`, `3.0.9`).
pub fn identify(fips_so: &[u8]) -> Option<ProviderIdentity> {
    let name = b"OpenSSL FIPS Provider\0";
    let at = memmem::find(fips_so, name)?;
    let before = &fips_so[at.saturating_sub(128)..at];
    let own = before.rsplit(|&c| c == 0).next().unwrap_or_default();
    let red_hat = memmem::find(own, b"Red Hat").is_some();
    let after = &fips_so[at + name.len()..fips_so.len().min(at + name.len() + 256)];
    let version = (after.split(|&c| c == 0))
        .find(|s| version_at(s).is_some_and(|v| v.len() == s.len()))
        .map(|s| String::from_utf8_lossy(s).into_owned());
    Some(ProviderIdentity { version, red_hat })
}

/// The certificate a provider version was validated under: (number, module name).
pub fn certificate(identity: &ProviderIdentity) -> Option<&'static str> {
    match (identity.version.as_deref()?, identity.red_hat) {
        ("3.0.7", true) => Some("4857"),
        ("3.1.2", false) => Some("4985"),
        ("3.0.8" | "3.0.9", false) => Some("4282"),
        _ => None,
    }
}

/// HMAC-SHA256 of `fips.so` under the default FIPS key: what `module-mac` must be.
pub fn module_mac(fips_so: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let key: Vec<u8> = (0..DEFAULT_FIPS_KEY.len() / 2)
        .filter_map(|i| u8::from_str_radix(&DEFAULT_FIPS_KEY[2 * i..2 * i + 2], 16).ok())
        .collect();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    hmac::sign(&key, fips_so).as_ref().to_vec()
}

/// `23:F5:1F:...` as bytes.
pub fn parse_mac(text: &str) -> Option<Vec<u8>> {
    (text.trim().split(':'))
        .map(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.len() == 2))
        .collect()
}

/// An OpenSSL configuration, includes merged: section -> key -> value (`""` is the default
/// section).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
    /// The files read, the first one first.
    pub files: Vec<String>,
}

/// One file's lines: `(section, key, value)` settings and `.include` targets, in order.
pub enum Line {
    Set(String, String, String),
    Include(String),
}

/// Parses one configuration file (comments, `[ section ]`, `key = value`, `.include`).
pub fn parse(text: &str) -> Vec<Line> {
    let mut section = String::new();
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if let Some(rest) = line.strip_prefix(".include") {
            let target = rest.trim().trim_start_matches('=').trim();
            out.push(Line::Include(target.trim_matches('"').to_string()));
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').to_string();
            out.push(Line::Set(section.clone(), k.trim().to_string(), v));
        }
    }
    out
}

impl Config {
    /// A setting.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    /// Adds a parsed file's settings (later ones win, as in OpenSSL).
    pub fn merge(&mut self, lines: Vec<Line>) -> Vec<String> {
        let mut includes = Vec::new();
        for line in lines {
            match line {
                Line::Set(s, k, v) => {
                    self.sections.entry(s).or_default().insert(k, v);
                }
                Line::Include(t) => includes.push(t),
            }
        }
        includes
    }

    /// The FIPS provider's section (`fips = fips_sect` under the providers section).
    pub fn fips_section(&self) -> Option<&str> {
        let init = self.get("", "openssl_conf")?;
        let providers = self.get(init, "providers")?;
        self.get(providers, "fips")
    }

    /// `module-mac` of the FIPS section, or of any section when no section is activated
    /// (a lone `fipsmodule.cnf`).
    pub fn module_mac(&self) -> Option<&str> {
        match self.fips_section() {
            Some(s) => self.get(s, "module-mac"),
            None => (self.sections.values()).find_map(|s| s.get("module-mac").map(String::as_str)),
        }
    }

    /// What keeps the provider from being used by default, if anything.
    pub fn inactive_because(&self) -> Option<String> {
        let truthy = |v: Option<&str>| matches!(v, Some("1" | "yes" | "true" | "on"));
        let Some(section) = self.fips_section() else {
            return Some("the configuration loads no fips provider section".into());
        };
        if !truthy(self.get(section, "activate")) {
            return Some(format!("[{section}] does not say activate = 1"));
        }
        let init = self.get("", "openssl_conf").unwrap_or_default();
        let props = (self.get(init, "alg_section"))
            .and_then(|alg| self.get(alg, "default_properties"))
            .unwrap_or_default();
        let fips_yes = (props.split(',')).any(|p| p.trim().trim_start_matches('?') == "fips=yes");
        (!fips_yes).then(|| "default_properties does not say fips=yes".to_string())
    }
}

/// The upstream version of an installed Debian package from a dpkg status database
/// (`3.5.9` of `3.5.9-1~deb13u1`).
pub fn dpkg_version(status: &str, package: &str) -> Option<String> {
    status.split("\n\n").find_map(|para| {
        let field = |name: &str| {
            (para.lines()).find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
        };
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        if field("Package") != Some(package) || !installed {
            return None;
        }
        let v = field("Version")?;
        let v = v.split_once(':').map_or(v, |(_, rest)| rest);
        Some(v.split('-').next().unwrap_or(v).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_mac_is_hmac_sha256_under_the_default_key() {
        // `openssl mac -digest SHA256 -macopt hexkey:<DEFAULT_FIPS_KEY> -in f HMAC` of "abc".
        let mac = module_mac(b"abc");
        let hex: String = mac.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            hex,
            "F25AB6EA6D06B263084CC1BF92D6C6EF6BEDEB78AAE1D9E1E2C01496D3704A20"
        );
        assert_eq!(mac.len(), 32);
        let text: Vec<String> = mac.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_mac(&text.join(":")), Some(mac));
        assert_eq!(parse_mac("2:F5"), None);
    }

    #[test]
    fn provider_identity_and_certificates() {
        let so = b"x\0OpenSSL FIPS Provider\x003.1.2\0OpenSSL DSA\0";
        let id = identify(so).unwrap();
        assert_eq!((id.version.as_deref(), id.red_hat), (Some("3.1.2"), false));
        assert_eq!(certificate(&id), Some("4985"));
        let rh = b"\0Red Hat Enterprise Linux 9 - OpenSSL FIPS Provider\x003.0.7\0";
        let id = identify(rh).unwrap();
        assert!(id.red_hat);
        assert_eq!(certificate(&id), Some("4857"));
        let other = identify(b"OpenSSL FIPS Provider\x003.5.9\0").unwrap();
        assert_eq!(certificate(&other), None);
        assert_eq!(identify(b"libcrypto.so.3"), None);
    }

    #[test]
    fn activation_needs_the_section_activate_and_fips_yes() {
        let main = "openssl_conf = openssl_init\n.include /usr/lib/ssl/fipsmodule.cnf\n\
            [openssl_init]\nproviders = provider_sect\nalg_section = algorithm_sect\n\
            [provider_sect]\nfips = fips_sect\nbase = base_sect\n\
            [algorithm_sect]\ndefault_properties = fips=yes # FIPS only\n";
        let module = "[fips_sect]\nactivate = 1\nmodule-mac = 00:11\n";
        let mut c = Config::default();
        assert_eq!(c.merge(parse(main)), ["/usr/lib/ssl/fipsmodule.cnf"]);
        assert_eq!(
            c.inactive_because().as_deref(),
            Some("[fips_sect] does not say activate = 1")
        );
        c.merge(parse(module));
        assert_eq!(c.inactive_because(), None);
        assert_eq!(c.module_mac(), Some("00:11"));
        let mut lone = Config::default();
        lone.merge(parse(module));
        assert_eq!(lone.module_mac(), Some("00:11"));
        assert!(lone.inactive_because().is_some());
        let no_props = main.replace("default_properties = fips=yes", "");
        let mut c = Config::default();
        c.merge(parse(&no_props));
        c.merge(parse(module));
        assert_eq!(
            c.inactive_because().as_deref(),
            Some("default_properties does not say fips=yes")
        );
    }

    #[test]
    fn dpkg_status_gives_the_upstream_version() {
        let status = "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.19-1~deb12u1\n\n\
            Package: openssl-provider-fips\nStatus: install ok installed\nVersion: 1:3.5.9-1~deb13u1\n";
        assert_eq!(
            dpkg_version(status, "openssl-provider-fips").as_deref(),
            Some("3.5.9")
        );
        let removed = status.replace(
            "install ok installed\nVersion: 1:",
            "deinstall ok config-files\nVersion: ",
        );
        assert_eq!(dpkg_version(&removed, "openssl-provider-fips"), None);
    }
}
