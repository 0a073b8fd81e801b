//! Byte markers in a binary's function-name table (pclntab), symbols and read-only data, found
//! with `memchr::memmem`. Go's pclntab survives `-s -w`, so the Go markers work on stripped
//! binaries too.

use memchr::memmem;

/// What the markers say of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Markers {
    /// `crypto/internal/boring/sig.BoringCrypto`: BoringCrypto is linked.
    pub boring_sig: bool,
    /// `crypto/internal/boring/sig.StandardCrypto`: Go's own crypto is linked.
    pub standard_sig: bool,
    /// `_Cfunc__goboringcrypto_`: cgo calls into the BoringCrypto module.
    pub boring_cgo: bool,
    /// `crypto/tls/fipsonly` is linked.
    pub fipsonly: bool,
    /// The snapshot of Go's FIPS module linked: `v1.0.0-c2097c7c` of
    /// `crypto/internal/fips140/v1.0.0-c2097c7c/...`.
    pub go_fips_module: Option<String>,
    /// golang-fips/openssl (dlopen of libcrypto at run time).
    pub golang_fips_openssl: bool,
    /// Any function under `crypto/` or `golang.org/x/crypto/`.
    pub go_crypto: bool,
    /// `OpenSSL 3.0.13 30 Jan 2024`: OpenSSL's version text, so OpenSSL itself is inside.
    pub openssl: Option<String>,
    /// `aws_lc_fips_` symbols; the version of `AWS-LC FIPS x.y.z` when present.
    pub aws_lc_fips: Option<Option<String>>,
    /// `aws_lc_<digit>` symbols: AWS-LC without its FIPS module.
    pub aws_lc: bool,
    /// `ring_core_` symbols: ring's own crypto.
    pub ring: bool,
    /// `BoringSSL-FIPS` version text.
    pub boringssl_fips: bool,
}

const BORING_SIG: &[u8] = b"crypto/internal/boring/sig.BoringCrypto";
const STANDARD_SIG: &[u8] = b"crypto/internal/boring/sig.StandardCrypto";
const BORING_CGO: &[u8] = b"_Cfunc__goboringcrypto_";
const FIPSONLY: &[u8] = b"crypto/tls/fipsonly";
const GO_FIPS_MODULE: &[u8] = b"crypto/internal/fips140/v";
/// golang-fips/openssl v2 (Red Hat, Microsoft Go) and the older Red Hat toolchain's loader.
const GOLANG_FIPS: &[&[u8]] = &[b"golang-fips/openssl", b"_goboringcrypto_DLOpen"];
/// Function names in the pclntab follow the previous name's NUL.
const GO_CRYPTO: &[&[u8]] = &[
    b"\0crypto/",
    b"\0golang.org/x/crypto/",
    b"\0vendor/golang.org/x/crypto/",
];

/// The Go markers of a Go binary.
pub fn go(data: &[u8]) -> Markers {
    let has = |needle: &[u8]| memmem::find(data, needle).is_some();
    Markers {
        boring_sig: has(BORING_SIG),
        standard_sig: has(STANDARD_SIG),
        boring_cgo: has(BORING_CGO),
        fipsonly: has(FIPSONLY),
        go_fips_module: go_fips_module(data),
        golang_fips_openssl: GOLANG_FIPS.iter().any(|n| has(n)),
        go_crypto: GO_CRYPTO.iter().any(|n| has(n)),
        ..Markers::default()
    }
}

/// The markers of any other binary.
pub fn native(data: &[u8]) -> Markers {
    let has = |needle: &[u8]| memmem::find(data, needle).is_some();
    let aws_lc_fips = has(b"aws_lc_fips_").then(|| {
        let at = memmem::find(data, b"AWS-LC FIPS ")?;
        version_at(&data[at + b"AWS-LC FIPS ".len()..])
    });
    let aws_lc = memmem::find_iter(data, b"aws_lc_")
        .any(|at| data.get(at + 7).is_some_and(u8::is_ascii_digit));
    Markers {
        openssl: openssl_version(data),
        aws_lc_fips,
        aws_lc,
        ring: has(b"ring_core_"),
        boringssl_fips: has(b"BoringSSL-FIPS"),
        ..Markers::default()
    }
}

fn go_fips_module(data: &[u8]) -> Option<String> {
    let at = memmem::find(data, GO_FIPS_MODULE)? + GO_FIPS_MODULE.len() - 1;
    let end = (data[at..].iter())
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'.' || c == b'-'))
        .map_or(data.len(), |n| at + n);
    let v = String::from_utf8_lossy(&data[at..end]);
    // `v1.0.0-c2097c7c/...` names a directory; a bare `v1.0.0` would be a stray string.
    let versioned = v[1..].starts_with(|c: char| c.is_ascii_digit());
    (versioned && data.get(end) == Some(&b'/')).then(|| v.into_owned())
}

/// `3.0.13` (or `1.1.1w`) from `OpenSSL 3.0.13 30 Jan 2024`: the version must be followed by
/// a date, as in OpenSSL's own version text, so prose that names OpenSSL does not count.
pub fn openssl_version(data: &[u8]) -> Option<String> {
    memmem::find_iter(data, b"OpenSSL ").find_map(|at| {
        let rest = &data[at + 8..data.len().min(at + 64)];
        let version = version_at(rest)?;
        let after = String::from_utf8_lossy(&rest[version.len()..]);
        let after = after.trim_start_matches(|c: char| c.is_ascii_lowercase());
        let mut words = after.split_whitespace();
        let day = words.next()?.parse::<u8>().ok()?;
        let month = words.next()?;
        let year = words.next()?.get(..4)?.parse::<u16>().ok()?;
        let months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec";
        (day <= 31 && year >= 1998 && month.len() == 3 && months.contains(month))
            .then(|| full_version(rest, &version))
    })
}

/// The version with its letter suffix (`1.1.1w`).
fn full_version(rest: &[u8], version: &str) -> String {
    let letters = (rest[version.len()..].iter())
        .take_while(|c| c.is_ascii_lowercase())
        .count();
    String::from_utf8_lossy(&rest[..version.len() + letters]).into_owned()
}

/// `x.y.z` at the start of `b` (digits and two dots).
pub fn version_at(b: &[u8]) -> Option<String> {
    let len = (b.iter())
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(b.len());
    let v = std::str::from_utf8(&b[..len]).ok()?.trim_end_matches('.');
    let parts: Vec<&str> = v.split('.').collect();
    let ok = parts.len() == 3 && parts.iter().all(|p| !p.is_empty());
    ok.then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_markers_name_what_is_linked() {
        let boring = b"\0crypto/sha256.New\0crypto/internal/boring/sig.BoringCrypto\0\
            _cgo_x\0_Cfunc__goboringcrypto_SHA256_Init\0crypto/tls/fipsonly.init\0";
        let m = go(boring);
        assert!(m.boring_sig && m.boring_cgo && m.fipsonly && m.go_crypto);
        assert!(!m.standard_sig && !m.golang_fips_openssl);
        let native = b"\0crypto/internal/fips140/v1.0.0-c2097c7c/sha256.Block\0";
        assert_eq!(
            go(native).go_fips_module.as_deref(),
            Some("v1.0.0-c2097c7c")
        );
        assert_eq!(
            go(b"crypto/internal/fips140/v1.0.0 is").go_fips_module,
            None
        );
        let rh = b"\0vendor/github.com/golang-fips/openssl/v2.dlopen\0";
        assert!(go(rh).golang_fips_openssl);
        let plain = b"\0fmt.Println\0runtime.main\0main.cryptoHelper\0";
        assert_eq!(go(plain), Markers::default());
        // The x/crypto module counts as crypto.
        assert!(go(b"\0golang.org/x/crypto/ssh.Dial\0").go_crypto);
    }

    #[test]
    fn openssl_counts_only_as_its_version_text() {
        let v = |s: &[u8]| openssl_version(s);
        assert_eq!(
            v(b"xx\0OpenSSL 3.0.13 30 Jan 2024\0").as_deref(),
            Some("3.0.13")
        );
        assert_eq!(v(b"OpenSSL 1.1.1w  11 Sep 2023").as_deref(), Some("1.1.1w"));
        assert_eq!(v(b"OpenSSL 4.0.3 29 Sep 2026").as_deref(), Some("4.0.3"));
        assert_eq!(v(b"requires OpenSSL 1.0.2 or later"), None);
        assert_eq!(v(b"OpenSSL 3.0 is needed"), None);
        assert_eq!(v(b"OpenSSL 3.0.1 99 Foo 2024"), None);
    }

    #[test]
    fn native_markers_tell_fips_from_non_fips_rust_crypto() {
        let m = native(b"aws_lc_fips_0_13_7_EVP_sha256\0AWS-LC FIPS 3.0.0\0");
        assert_eq!(m.aws_lc_fips, Some(Some("3.0.0".into())));
        assert!(!m.aws_lc, "aws_lc_fips_ is not aws_lc_<digit>");
        let m = native(b"aws_lc_0_29_0_EVP_sha256\0ring_core_0_17_8_x\0");
        assert!(m.aws_lc && m.ring && m.aws_lc_fips.is_none());
        assert!(native(b"BoringSSL-FIPS 20230428").boringssl_fips);
        assert_eq!(native(b"plain C program"), Markers::default());
    }
}
