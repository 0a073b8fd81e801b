//! `fipsgate scan`: judges the binaries of an image's filesystem for FIPS-validated
//! cryptography. Pure: the filesystem is read through a [`Tree`], the certificate facts come
//! from the catalogue's table, the date and the image's environment are passed in.
//!
//! A scan reads every regular file's first bytes; ELF files and jars are then read whole, up
//! to [`Limits::max_file_bytes`]: a larger one is `UNKNOWN` (`TooLarge`), never guessed.
//! Each file gets a [`Finding`] from the rules (G Go, E other ELF, O the OpenSSL provider, J
//! jars, R runtime overrides) under a [`Profile`]; [`Exceptions`] can accept failures, and
//! the image gets `full`, `partial`, `none` or `unknown`.

mod elf;
mod exceptions;
mod goinfo;
mod jar;
pub mod layers;
mod markers;
pub mod oci;
mod openssl;
mod rules;
mod run;
pub mod tree;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::fips::{Certificate, CryptoModule, Status};

pub use exceptions::{Exception, Exceptions, ExceptionsError, Subject, suggest};
pub use goinfo::BuildInfo;
pub use tree::{Entry, EntryKind, MemTree, Tree, TreeError};

/// A file's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// Validated cryptography (the module says which).
    #[serde(rename = "PASS")]
    Pass,
    /// Cryptography that cannot be confirmed as validated; keeps the image from `full`.
    #[serde(rename = "WARN")]
    Warn,
    /// Cryptography that is not validated.
    #[serde(rename = "FAIL")]
    Fail,
    /// No cryptography.
    #[serde(rename = "N/A")]
    NotApplicable,
    /// Could not be read or told.
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl Verdict {
    /// The one spelling: `PASS`, `WARN`, `FAIL`, `N/A`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "N/A",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a judged file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Executable,
    SharedObject,
    /// OpenSSL's FIPS provider, `**/ossl-modules/fips.so`.
    FipsProvider,
    Jar,
    /// An environment variable of the image (`env:GODEBUG`).
    Env,
    /// A candidate that could not be read.
    File,
}

impl FileKind {
    /// The one spelling, as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Executable => "executable",
            FileKind::SharedObject => "shared-object",
            FileKind::FipsProvider => "fips-provider",
            FileKind::Jar => "jar",
            FileKind::Env => "env",
            FileKind::File => "file",
        }
    }
}

/// How an ELF file is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    Static,
    Dynamic,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Static => "static",
            Link::Dynamic => "dynamic",
        }
    }
}

/// The rules, as in the README's rule table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[rustfmt::skip]
pub enum Rule { G1, G2, G3, G4, G5, G6, G7, G8, G9, G10, E1, E2, E3, E4, E5, E6, E7, O1, O2, O3, O4, J1, R1, X }

impl Rule {
    /// `G6`; `X` is no rule (a file that could not be read).
    pub fn as_str(self) -> &'static str {
        use Rule::*;
        #[rustfmt::skip]
        let s = match self {
            G1 => "G1", G2 => "G2", G3 => "G3", G4 => "G4", G5 => "G5", G6 => "G6", G7 => "G7",
            G8 => "G8", G9 => "G9", G10 => "G10", E1 => "E1", E2 => "E2", E3 => "E3", E4 => "E4",
            E5 => "E5", E6 => "E6", E7 => "E7", O1 => "O1", O2 => "O2", O3 => "O3", O4 => "O4",
            J1 => "J1", R1 => "R1", X => "-",
        };
        s
    }
}

/// Stable names of what keeps a file from `PASS` (as check-payload names its errors): for
/// exceptions and scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorName {
    /// The build says boringcrypto, the binary links Go's standard crypto (no cgo).
    GoBoringNotLinked,
    /// Go's own, non-validated crypto.
    GoStandardCrypto,
    /// A Go FIPS module is linked but `fips140` is not enabled by default.
    GoFIPSNotEnabled,
    /// `GOFIPS140=latest` or `fips140=on` without a validated module snapshot.
    GoFIPSUnvalidated,
    /// golang-fips/OpenSSL without cgo.
    GoNotCgoEnabled,
    /// golang-fips/OpenSSL without the `strictfipsruntime` tag.
    GoNoStrictFIPSRuntime,
    /// Microsoft Go's system crypto without `requirefips`: FIPS only if the host asks.
    GoSystemCryptoNotRequired,
    /// The Go crypto cannot be told (no marker of either kind).
    GoCryptoUndetermined,
    /// A static executable whose crypto cannot be checked, or one the profile wants dynamic.
    NotDynLinked,
    /// The profile wants a static Go binary.
    NotStaticLinked,
    /// The profile wants Go BoringCrypto.
    NotBoringCrypto,
    /// The profile wants OpenSSL (dynamically linked, or golang-fips).
    NotOpenSSL,
    /// OpenSSL linked into the file instead of the system's libcrypto.
    EmbeddedOpenSSL,
    /// AWS-LC without its FIPS module, or ring.
    NonFIPSRustCrypto,
    /// libgcrypt, GnuTLS, Mbed TLS or libsodium.
    OtherCryptoLibrary,
    /// OpenSSL 1.x: FIPS only in vendor builds, not judged.
    OpenSSLLegacy,
    /// libcrypto is used and no `ossl-modules/fips.so` is in the image.
    NoFIPSProvider,
    /// `fips.so` has no version fipsgate can read.
    ProviderUnidentified,
    /// The provider's version is not a validated one.
    ProviderNotValidated,
    /// `module-mac` is not the HMAC of `fips.so`.
    ProviderMACMismatch,
    /// No `fipsmodule.cnf` with a `module-mac`: `openssl fipsinstall` never ran.
    ProviderNotInstalled,
    /// The provider is installed but `openssl.cnf` does not activate it by default.
    ProviderInactive,
    /// A validated module whose certificate the catalogue's table does not have.
    CertificateNotInCatalog,
    /// The module's certificate is historical (past its sunset) on the scan date.
    CertificateHistorical,
    /// The module's certificate is revoked.
    CertificateRevoked,
    /// The module is in process: not validated yet.
    ModuleInProcess,
    /// Bouncy Castle's plain provider, not its FIPS one.
    BouncyCastleNotFIPS,
    /// `GODEBUG=fips140=off` in the image's environment.
    RuntimeFIPSOff,
    /// `GOFIPS=0` in the image's environment.
    RuntimeGoFIPSOff,
    /// `OPENSSL_CONF` names a configuration that does not activate the provider.
    OpenSSLConfOverride,
    /// `OPENSSL_MODULES` names a directory without `fips.so`.
    OpenSSLModulesOverride,
    /// Larger than the scan reads.
    TooLarge,
    /// Could not be read or parsed.
    Unreadable,
}

impl ErrorName {
    /// The stable name (`NotDynLinked`).
    pub fn as_str(self) -> String {
        format!("{self:?}")
    }
}

/// The verdict on one file (or one environment variable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub path: String,
    pub kind: FileKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The Go toolchain (`go1.19.8 X:boringcrypto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// The cryptography found: `boringcrypto`, `go-standard`, `openssl (libcrypto.so.3)`,
    /// `-` for none.
    pub crypto: String,
    pub rule: Rule,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorName>,
    pub reason: String,
    /// The module (and its certificate) the verdict rests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<CryptoModule>,
    /// The exception that accepts this finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

/// Which link methods count: a vendor's policy, not a universal truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Any validated module, however linked.
    #[default]
    Any,
    /// Go binaries must be static with BoringCrypto (the vendor's `fips-validate`).
    VendorStaticBoring,
    /// Go through golang-fips/OpenSSL or Go's own module; other code through the system's
    /// dynamically linked OpenSSL (Red Hat's `check-payload`).
    RedhatDynamicOpenssl,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Any => "any",
            Profile::VendorStaticBoring => "vendor-static-boring",
            Profile::RedhatDynamicOpenssl => "redhat-dynamic-openssl",
        }
    }
}

/// The version of the rule set (the rule table, the profiles, what each error name means):
/// raised whenever a rule's verdict on some file changes, so a scan attestation says which
/// rules judged the image.
pub const RULES_VERSION: &str = "2026.11.1";

/// How much a scan reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest candidate read (ELF, jar); larger ones are `UNKNOWN` (`TooLarge`).
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 512 << 20,
        }
    }
}

/// What a scan is told besides the tree.
#[derive(Clone, Debug)]
pub struct ScanInput<'a> {
    pub profile: Profile,
    /// The image configuration's `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
    /// The catalogue's certificate table.
    pub certificates: &'a [Certificate],
    pub exceptions: &'a Exceptions,
    /// The image the tree is, for exceptions by repository or component.
    pub subject: Subject,
    /// The day certificate statuses are evaluated on.
    pub today: jiff::civil::Date,
    pub limits: Limits,
}

/// Counts of findings by verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub not_applicable: usize,
    pub unknown: usize,
    /// Findings an exception accepted.
    pub excepted: usize,
}

/// The image a report is about: what an attestation of the scan is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSubject {
    /// The reference as named (`registry.example.com/team/app:1.4`, `oci:DIR:TAG`).
    pub reference: String,
    /// The platform manifest's digest: the image whose layers were scanned.
    pub digest: String,
    /// The platform scanned (`linux/amd64`, `linux/arm/v7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The index's digest, when the platform was scanned from a multi-arch index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

/// The scan of one image's filesystem. Read back (`fipsgate attest --scan-result`) as written
/// by `scan -o json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The image scanned, when the tree is an image's layers; none for a directory
    /// (`--rootfs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSubject>,
    /// The day certificate statuses were evaluated on (`--date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<jiff::civil::Date>,
    /// When the scan ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<jiff::Timestamp>,
    /// `full`, `partial` (failures only where exceptions accept them), `none`, `unknown`.
    pub status: Status,
    pub profile: Profile,
    /// The validated modules the passing files rest on.
    pub modules: Vec<CryptoModule>,
    pub counts: Counts,
    /// Regular files looked at.
    pub files_scanned: usize,
    /// One per judged file, by path.
    pub findings: Vec<Finding>,
}

/// The scans of one image named on the command line: one report per platform scanned.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageScan {
    pub reference: String,
    /// What the reference resolved to: the index, or the image manifest.
    pub digest: String,
    /// `digest` is a multi-arch index.
    pub index: bool,
    /// The worst of the platforms' statuses: the index's verdict.
    pub status: Status,
    pub reports: Vec<Report>,
}

/// Scans of several images (or platforms), and the worst of their statuses: what
/// `scan IMAGE... -o json` writes, read back by `fipsgate attest --scan-result`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageScans {
    pub status: Status,
    pub images: Vec<ImageScan>,
}

/// The worst of `statuses` (`none`, then `unknown`, then `partial`); `full` for none.
pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
    let rank = |s: Status| match s {
        Status::None => 0,
        Status::Unknown => 1,
        Status::Partial => 2,
        Status::Full => 3,
    };
    (statuses.into_iter())
        .min_by_key(|s| rank(*s))
        .unwrap_or(Status::Full)
}

/// Why a scan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("listing the filesystem: {0}")]
    Tree(#[from] TreeError),
}

/// Scans a tree: every ELF file and jar judged, the image's verdict from them.
pub fn scan(tree: &dyn Tree, input: &ScanInput<'_>) -> Result<Report, ScanError> {
    run::scan(tree, input)
}

#[cfg(test)]
mod testelf;
#[cfg(test)]
mod tests;
