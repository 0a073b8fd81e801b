//! Webhook certificates with rcgen: a CA and a serving certificate signed by it.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The service name the API server verifies in the default deployment.
pub const SERVICE_HOST: &str = "fipsgate.fipsgate-system.svc";

/// File names inside a certificate directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A CA and a serving pair, all PEM.
pub struct Bundle {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

/// Makes a serving certificate for `hosts` (DNS names or IP addresses), signed by the given CA
/// or by a new one.
pub fn generate(
    hosts: &[String],
    ca: Option<(&str, &str)>,
    days: i64,
) -> Result<Bundle, CertError> {
    let now = OffsetDateTime::now_utc();
    let (ca_cert, ca_key_pair) = match ca {
        Some((cert, key)) => (cert.to_string(), KeyPair::from_pem(key)?),
        None => {
            let key = KeyPair::generate()?;
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            p.distinguished_name.push(DnType::CommonName, "fipsgate CA");
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.not_before = now - Duration::hours(1);
            p.not_after = now + Duration::days(days.max(1) * 10);
            (p.self_signed(&key)?.pem(), key)
        }
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, &ca_key_pair)?;
    let cn = hosts.first().map_or(SERVICE_HOST, String::as_str);
    let (cert, key) = leaf(
        cn,
        hosts,
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
        days,
    )?;
    Ok(Bundle {
        ca_cert,
        ca_key: ca_key_pair.serialize_pem(),
        cert,
        key,
    })
}

/// A client certificate for `name` (common name and DNS name), signed by the CA: what the API
/// server presents to a webhook that requires client authentication. PEM certificate and key.
pub fn client(name: &str, ca: (&str, &str), days: i64) -> Result<(String, String), CertError> {
    let ca_key = KeyPair::from_pem(ca.1)?;
    let issuer = Issuer::from_ca_cert_pem(ca.0, &ca_key)?;
    let names = [name.to_string()];
    leaf(
        name,
        &names,
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
        days,
    )
}

/// A leaf certificate for `names` (DNS names or IP addresses) with this usage.
fn leaf(
    cn: &str,
    names: &[String],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, &KeyPair>,
    days: i64,
) -> Result<(String, String), CertError> {
    let now = OffsetDateTime::now_utc();
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    for h in names {
        p.subject_alt_names
            .push(match h.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(h.as_str().try_into()?),
            });
    }
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![usage];
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(days.max(1));
    let cert = p.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes the bundle into `dir` (created 0700); keys are 0600.
pub fn write(dir: &Path, b: &Bundle) -> Result<(), CertError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    set_mode(dir, 0o700).map_err(io(dir))?;
    for (name, text, mode) in [
        (CA_CERT, &b.ca_cert, 0o644),
        (CA_KEY, &b.ca_key, 0o600),
        (TLS_KEY, &b.key, 0o600),
        (TLS_CERT, &b.cert, 0o644),
    ] {
        let path = dir.join(name);
        // Write to a temporary name, then rename, so a reader never sees half a file.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        set_mode(&tmp, mode).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// True when `dir` holds a serving certificate valid for at least another day.
pub fn still_valid(dir: &Path) -> bool {
    let Ok(pem) = std::fs::read_to_string(dir.join(TLS_CERT)) else {
        return false;
    };
    if !dir.join(TLS_KEY).exists() {
        return false;
    }
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else {
        return false;
    };
    let horizon = OffsetDateTime::now_utc() + Duration::days(1);
    pem.parse_x509()
        .is_ok_and(|c| c.validity().not_after.timestamp() > horizon.unix_timestamp())
}

/// The development certificates under `dir`: reused while valid, made otherwise.
pub fn ensure_dev(dir: &Path) -> Result<bool, CertError> {
    if still_valid(dir) {
        return Ok(false);
    }
    let hosts = ["localhost", "127.0.0.1", "::1", SERVICE_HOST].map(String::from);
    write(dir, &generate(&hosts, None, 30)?)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certs_are_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("dev");
        assert!(ensure_dev(&d).unwrap());
        let first = std::fs::read(d.join(TLS_CERT)).unwrap();
        assert!(!ensure_dev(&d).unwrap());
        assert_eq!(first, std::fs::read(d.join(TLS_CERT)).unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(TLS_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn renewal_reuses_the_ca() {
        let a = generate(&["a.svc".into()], None, 1).unwrap();
        let b = generate(
            &["a.svc".into(), "10.0.0.1".into()],
            Some((&a.ca_cert, &a.ca_key)),
            1,
        )
        .unwrap();
        assert_eq!(a.ca_cert, b.ca_cert);
        assert_ne!(a.cert, b.cert);
    }
}
