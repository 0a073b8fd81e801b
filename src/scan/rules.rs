//! The rules: from one file's facts, with the image's OpenSSL provider and the profile, to a
//! verdict. Rule ids follow the README's table.

use crate::domain::fips::{Certificate, CertificateStatus, CryptoModule, UNKNOWN_STANDARD};

use super::elf::{ElfFacts, ElfType};
use super::goinfo::BuildInfo;
use super::jar::JarFacts;
use super::markers::Markers;
use super::openssl::{self, ProviderIdentity};
use super::{ErrorName, FileKind, Finding, Link, Profile, Rule, Verdict};

/// What was read of one candidate file.
#[derive(Clone, Debug)]
pub enum Facts {
    Elf {
        elf: Box<ElfFacts>,
        markers: Markers,
        /// For `**/ossl-modules/fips.so`.
        provider: Option<ProviderFile>,
    },
    Jar(JarFacts),
    Unreadable {
        error: ErrorName,
        reason: String,
    },
}

/// An OpenSSL FIPS provider file: its identity (if readable) and the `module-mac` it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderFile {
    pub identity: Option<ProviderIdentity>,
    pub mac: Vec<u8>,
}

/// How `module-mac` compares with `fips.so`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mac {
    Match,
    Mismatch,
    /// No `module-mac` anywhere.
    Missing,
    /// Red Hat's build checks a MAC inside `fips.so`.
    Embedded,
}

/// The image's OpenSSL FIPS provider, as the effective configuration loads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    pub path: String,
    pub identity: Option<ProviderIdentity>,
    pub mac: Mac,
    /// Why the provider is not used by default; none when it is.
    pub inactive: Option<String>,
}

/// What every file is judged with.
pub struct Context<'a> {
    pub profile: Profile,
    pub certificates: &'a [Certificate],
    pub today: jiff::civil::Date,
    /// None: no `fips.so` where OpenSSL looks.
    pub provider: Option<Provider>,
}

/// A verdict before it is placed on a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub rule: Rule,
    pub verdict: Verdict,
    pub error: Option<ErrorName>,
    pub reason: String,
    pub module: Option<CryptoModule>,
    pub crypto: String,
}

impl Judgement {
    fn new(
        rule: Rule,
        verdict: Verdict,
        error: Option<ErrorName>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            verdict,
            error,
            reason: reason.into(),
            module: None,
            crypto: "-".into(),
        }
    }
    fn fail(rule: Rule, error: ErrorName, reason: impl Into<String>) -> Self {
        Self::new(rule, Verdict::Fail, Some(error), reason)
    }
    fn warn(rule: Rule, error: ErrorName, reason: impl Into<String>) -> Self {
        Self::new(rule, Verdict::Warn, Some(error), reason)
    }
    fn none(rule: Rule, reason: impl Into<String>) -> Self {
        Self::new(rule, Verdict::NotApplicable, None, reason)
    }
    fn crypto(mut self, crypto: impl Into<String>) -> Self {
        self.crypto = crypto.into();
        self
    }
}

/// The crypto family a judgement rests on, for the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    GoBoring,
    GoNative,
    GoOpenSsl,
    SystemOpenSsl,
    Embedded,
    Other,
}

/// The module with its certificate's facts from the table: `PASS` when the certificate is
/// active, a warning or failure otherwise. `number` is the certificate fipsgate knows for this
/// module; without one (or one the table lacks), a certificate whose module name is `name`
/// counts (catalogue files can add them).
pub fn certify(
    ctx: &Context<'_>,
    rule: Rule,
    name: &str,
    number: Option<&str>,
    reason: &str,
) -> Judgement {
    let table = ctx.certificates;
    let by_number = number.and_then(|n| table.iter().find(|c| c.number == n));
    let by_name = || table.iter().find(|c| c.module.eq_ignore_ascii_case(name));
    let Some(cert) = by_number.or_else(by_name) else {
        let mut j = Judgement::warn(
            rule,
            ErrorName::CertificateNotInCatalog,
            match number {
                Some(n) => format!("{reason}; certificate #{n} is not in the catalogue's table"),
                None => format!("{reason}; no certificate for {name:?} in the catalogue's table"),
            },
        );
        j.module = Some(module(
            name,
            number,
            UNKNOWN_STANDARD,
            CertificateStatus::InProcess,
        ));
        return j;
    };
    let m = module(name, Some(&cert.number), &cert.standard, cert.status).certified_by(table);
    let status = m.status_on(ctx.today);
    let mut j = match status {
        CertificateStatus::Active => Judgement::new(rule, Verdict::Pass, None, reason),
        CertificateStatus::Historical => Judgement::warn(
            rule,
            ErrorName::CertificateHistorical,
            format!(
                "{reason}; certificate #{} is historical on {}",
                cert.number, ctx.today
            ),
        ),
        CertificateStatus::Revoked => Judgement::fail(
            rule,
            ErrorName::CertificateRevoked,
            format!("{reason}; certificate #{} is revoked", cert.number),
        ),
        CertificateStatus::InProcess => Judgement::warn(
            rule,
            ErrorName::ModuleInProcess,
            format!("{reason}; the module is in process, not validated yet"),
        ),
    };
    j.module = Some(m);
    j
}

fn module(
    name: &str,
    number: Option<&str>,
    standard: &str,
    status: CertificateStatus,
) -> CryptoModule {
    CryptoModule {
        name: name.to_string(),
        version: None,
        standard: standard.to_string(),
        certificate: number.map(str::to_string),
        certificate_status: status,
        sunset: None,
        build: None,
        previous_certificates: Vec::new(),
    }
}

/// The findings of one file (a jar with nested jars has several).
pub fn judge(path: &str, facts: &Facts, ctx: &Context<'_>) -> Vec<Finding> {
    match facts {
        Facts::Unreadable { error, reason } => {
            let j = Judgement::new(Rule::X, Verdict::Unknown, Some(*error), reason.clone());
            vec![place(path, FileKind::File, None, j)]
        }
        Facts::Jar(jar) => judge_jar(path, jar, ctx),
        Facts::Elf {
            elf,
            markers,
            provider,
        } => {
            let (j, family) = match (&elf.go, provider) {
                (_, Some(pf)) => (
                    provider_row(ctx, pf.identity.as_ref()),
                    Family::SystemOpenSsl,
                ),
                (Some(go), None) => judge_go(go, markers, elf, ctx),
                (None, None) => judge_native(path, elf, markers, ctx),
            };
            let j = apply_profile(ctx.profile, j, family, elf);
            let kind = match (provider, elf.elf_type) {
                (Some(_), _) => FileKind::FipsProvider,
                (None, ElfType::Executable) => FileKind::Executable,
                (None, ElfType::SharedObject) => FileKind::SharedObject,
            };
            vec![place(path, kind, Some(elf), j)]
        }
    }
}

fn place(path: &str, kind: FileKind, elf: Option<&ElfFacts>, j: Judgement) -> Finding {
    let link = elf.map(|e| match e.is_static() {
        true => Link::Static,
        false => Link::Dynamic,
    });
    Finding {
        path: path.to_string(),
        kind,
        arch: elf.map(|e| e.arch.clone()),
        go_version: elf.and_then(|e| e.go.as_ref()).map(|g| g.version.clone()),
        link,
        crypto: j.crypto,
        rule: j.rule,
        verdict: j.verdict,
        error: j.error,
        reason: j.reason,
        module: j.module,
        exception: None,
    }
}

/// Go binaries: G1-G10.
fn judge_go(go: &BuildInfo, m: &Markers, elf: &ElfFacts, ctx: &Context<'_>) -> (Judgement, Family) {
    let experiments = go.experiments();
    let system = experiments
        .iter()
        .any(|e| matches!(*e, "systemcrypto" | "opensslcrypto"));
    let native = go.setting("GOFIPS140").is_some_and(|v| v != "off")
        || m.go_fips_module.is_some()
        || matches!(go.default_fips140(), Some("on" | "only"));
    if m.golang_fips_openssl || system {
        return (judge_go_openssl(go, elf, system, ctx), Family::GoOpenSsl);
    }
    if native {
        return (judge_go_native(go, m, ctx), Family::GoNative);
    }
    if m.boring_sig || m.boring_cgo {
        return (judge_go_boring(go, m, elf, ctx), Family::GoBoring);
    }
    let boring_build = experiments.contains(&"boringcrypto");
    let j = if !m.go_crypto {
        Judgement::none(Rule::G1, "no function under crypto/ or golang.org/x/crypto")
    } else if boring_build && m.standard_sig {
        let cgo = go.setting("CGO_ENABLED").unwrap_or("?");
        Judgement::fail(
            Rule::G7,
            ErrorName::GoBoringNotLinked,
            format!("built with GOEXPERIMENT=boringcrypto and CGO_ENABLED={cgo}: Go's standard crypto is linked"),
        )
        .crypto("go-standard")
    } else if boring_build {
        Judgement::new(
            Rule::G7,
            Verdict::Unknown,
            Some(ErrorName::GoCryptoUndetermined),
            "built with boringcrypto, but neither sig.BoringCrypto nor sig.StandardCrypto is linked",
        )
    } else {
        Judgement::fail(
            Rule::G10,
            ErrorName::GoStandardCrypto,
            "Go's standard crypto (not validated)",
        )
        .crypto("go-standard")
    };
    (j, Family::Other)
}

/// G6: BoringCrypto, certificate by Go version.
fn judge_go_boring(go: &BuildInfo, m: &Markers, elf: &ElfFacts, ctx: &Context<'_>) -> Judgement {
    let (number, line) = match go.release() {
        Some(r) if r >= (1, 24) => ("4735", "BoringCrypto fips-20220613"),
        _ => ("3678", "BoringCrypto"),
    };
    let link = if elf.is_static() { "static" } else { "dynamic" };
    let reason = format!("sig.BoringCrypto is linked ({link})");
    let crypto = match m.fipsonly {
        true => "boringcrypto, fipsonly",
        false => "boringcrypto",
    };
    certify(ctx, Rule::G6, line, Some(number), &reason).crypto(crypto)
}

/// G2-G5: Go's own FIPS 140-3 module (Go 1.24 on).
fn judge_go_native(go: &BuildInfo, m: &Markers, ctx: &Context<'_>) -> Judgement {
    let setting = go.setting("GOFIPS140").filter(|v| *v != "off");
    let snapshot = m
        .go_fips_module
        .as_deref()
        .or(setting.filter(|s| s.starts_with('v')));
    let enabled = matches!(go.default_fips140(), Some("on" | "only"));
    let crypto = format!("go-fips140 {}", snapshot.or(setting).unwrap_or("in-tree"));
    let j = match snapshot {
        Some(v) if !enabled => Judgement::fail(
            Rule::G5,
            ErrorName::GoFIPSNotEnabled,
            format!("Go FIPS module {v} is linked but DefaultGODEBUG does not set fips140=on"),
        ),
        Some(v) if v.starts_with("v1.0.0") => certify(
            ctx,
            Rule::G2,
            "Go Cryptographic Module v1.0.0",
            Some("5247"),
            &format!("Go FIPS module {v}, fips140 on"),
        ),
        Some(v) if v.starts_with("v1.26.0") => {
            let mut j = Judgement::warn(
                Rule::G3,
                ErrorName::ModuleInProcess,
                format!("Go FIPS module {v}: in process, not validated yet"),
            );
            j.module = Some(module(
                "Go Cryptographic Module v1.26.0",
                None,
                "FIPS 140-3",
                CertificateStatus::InProcess,
            ));
            j
        }
        Some(v) => Judgement::fail(
            Rule::G4,
            ErrorName::GoFIPSUnvalidated,
            format!("Go FIPS module {v} is not a validated snapshot"),
        ),
        None => Judgement::fail(
            Rule::G4,
            ErrorName::GoFIPSUnvalidated,
            "FIPS mode with the in-tree Go module (GOFIPS140=latest or fips140=on), not a validated snapshot",
        ),
    };
    j.crypto(crypto)
}

/// G8/G9: golang-fips/OpenSSL and Microsoft Go's system crypto, then the OpenSSL rules.
fn judge_go_openssl(go: &BuildInfo, elf: &ElfFacts, system: bool, ctx: &Context<'_>) -> Judgement {
    let rule = if system { Rule::G9 } else { Rule::G8 };
    let tags = go.tags();
    let crypto = "openssl (golang-fips, dlopen)";
    let j = if go.setting("CGO_ENABLED") != Some("1") {
        Judgement::fail(
            rule,
            ErrorName::GoNotCgoEnabled,
            "OpenSSL through cgo, but CGO_ENABLED is not 1",
        )
    } else if elf.is_static() {
        Judgement::fail(
            rule,
            ErrorName::NotDynLinked,
            "a static binary cannot dlopen libcrypto",
        )
    } else if system && !tags.contains(&"requirefips") {
        Judgement::warn(
            rule,
            ErrorName::GoSystemCryptoNotRequired,
            "system crypto without the requirefips tag: FIPS only when the host or GOFIPS=1 asks",
        )
    } else if !system && !tags.contains(&"strictfipsruntime") {
        Judgement::fail(
            rule,
            ErrorName::GoNoStrictFIPSRuntime,
            "golang-fips/OpenSSL without the strictfipsruntime tag: it may fall back to Go crypto",
        )
    } else {
        openssl_rules(ctx, rule, "golang-fips/OpenSSL")
    };
    j.crypto(crypto)
}

/// The OpenSSL rules (O1-O4) for a file that uses the system's libcrypto.
pub fn openssl_rules(ctx: &Context<'_>, pass_rule: Rule, user: &str) -> Judgement {
    let Some(p) = &ctx.provider else {
        return Judgement::fail(
            Rule::O1,
            ErrorName::NoFIPSProvider,
            format!("{user} is used and the image has no ossl-modules/fips.so"),
        );
    };
    let at = &p.path;
    let version = p.identity.as_ref().and_then(|i| i.version.clone());
    let name = format!(
        "OpenSSL FIPS Provider {}",
        version.as_deref().unwrap_or("(unknown version)")
    );
    let mut j = match p.mac {
        Mac::Mismatch => Judgement::fail(
            Rule::O3,
            ErrorName::ProviderMACMismatch,
            format!(
                "module-mac is not the HMAC of {at}: modified, or installed for another fips.so"
            ),
        ),
        Mac::Missing => Judgement::fail(
            Rule::O3,
            ErrorName::ProviderNotInstalled,
            format!("no fipsmodule.cnf with a module-mac for {at}: openssl fipsinstall never ran"),
        ),
        Mac::Match | Mac::Embedded => match (&p.inactive, &p.identity) {
            (Some(why), _) => Judgement::warn(
                Rule::O4,
                ErrorName::ProviderInactive,
                format!("{at} is installed but not active: {why}"),
            ),
            (None, None) | (None, Some(ProviderIdentity { version: None, .. })) => Judgement::new(
                Rule::O2,
                Verdict::Unknown,
                Some(ErrorName::ProviderUnidentified),
                format!("{at}: no version could be read"),
            ),
            (None, Some(id)) => match openssl::certificate(id) {
                Some(n) => certify(
                    ctx,
                    pass_rule,
                    &name,
                    Some(n),
                    &format!("{user} with {at}, active"),
                ),
                None => certify_unvalidated(ctx, &name, at),
            },
        },
    };
    if j.module.is_none() && j.verdict != Verdict::Fail {
        j.module = Some(module(
            &name,
            None,
            UNKNOWN_STANDARD,
            CertificateStatus::InProcess,
        ));
    }
    j.crypto("openssl")
}

/// A provider version fipsgate knows no certificate of: a catalogue certificate for that
/// exact module name still counts.
fn certify_unvalidated(ctx: &Context<'_>, name: &str, at: &str) -> Judgement {
    if ctx
        .certificates
        .iter()
        .any(|c| c.module.eq_ignore_ascii_case(name))
    {
        return certify(ctx, Rule::O2, name, None, &format!("{at}, active"));
    }
    Judgement::warn(
        Rule::O2,
        ErrorName::ProviderNotValidated,
        format!("{name} ({at}) is not a validated version"),
    )
}

/// The row of `fips.so` itself.
fn provider_row(ctx: &Context<'_>, identity: Option<&ProviderIdentity>) -> Judgement {
    let mut j = openssl_rules(ctx, Rule::O2, "the provider");
    if identity.is_none() {
        j = Judgement::new(
            Rule::O2,
            Verdict::Unknown,
            Some(ErrorName::ProviderUnidentified),
            "not an OpenSSL FIPS provider fipsgate can read",
        );
    }
    j.crypto("openssl fips provider")
}

const OTHER_LIBRARIES: &[&str] = &[
    "libgcrypt.so",
    "libgnutls.so",
    "libmbedcrypto.so",
    "libmbedtls.so",
    "libsodium.so",
];

/// Other ELF files: E1-E7.
fn judge_native(path: &str, elf: &ElfFacts, m: &Markers, ctx: &Context<'_>) -> (Judgement, Family) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let own = elf.soname.as_deref().unwrap_or(name);
    let is = |prefixes: &[&str], lib: &str| prefixes.iter().any(|p| lib.starts_with(p));
    let openssl_libs = ["libcrypto.so", "libssl.so"];
    let openssl_dep =
        (elf.needed.iter().map(String::as_str).chain([own])).find(|l| is(&openssl_libs, l));
    let other =
        (elf.needed.iter().map(String::as_str).chain([own])).find(|l| is(OTHER_LIBRARIES, l));
    if m.ring || m.aws_lc {
        let which = if m.ring {
            "ring"
        } else {
            "AWS-LC without its FIPS module"
        };
        let j = Judgement::fail(
            Rule::E5,
            ErrorName::NonFIPSRustCrypto,
            format!("{which} is linked in"),
        );
        return (
            j.crypto(if m.ring { "ring" } else { "aws-lc" }),
            Family::Other,
        );
    }
    if let Some(version) = &m.aws_lc_fips {
        return (aws_lc_fips(ctx, version.as_deref()), Family::Embedded);
    }
    if m.boringssl_fips {
        let j = certify(
            ctx,
            Rule::E6,
            "BoringSSL FIPS",
            None,
            "BoringSSL-FIPS is linked in",
        );
        return (j.crypto("boringssl-fips"), Family::Embedded);
    }
    if let Some(lib) = openssl_dep {
        let j = if lib.contains(".so.1") || lib.contains(".so.0") {
            Judgement::new(
                Rule::E1,
                Verdict::Unknown,
                Some(ErrorName::OpenSSLLegacy),
                format!("{lib}: OpenSSL 1.x has FIPS only in vendor builds"),
            )
        } else {
            openssl_rules(ctx, Rule::E1, lib)
        };
        return (j.crypto(format!("openssl ({lib})")), Family::SystemOpenSsl);
    }
    let j = if let Some(v) = &m.openssl {
        Judgement::fail(
            Rule::E3,
            ErrorName::EmbeddedOpenSSL,
            format!("OpenSSL {v} is linked in, not the system's libcrypto"),
        )
        .crypto(format!("openssl {v} (embedded)"))
    } else if elf.is_static() {
        Judgement::fail(
            Rule::E2,
            ErrorName::NotDynLinked,
            "a static executable: the cryptography it may carry cannot be checked",
        )
    } else if let Some(lib) = other {
        Judgement::warn(
            Rule::E7,
            ErrorName::OtherCryptoLibrary,
            format!("{lib}: not judged by fipsgate"),
        )
        .crypto(lib.split(".so").next().unwrap_or(lib).to_string())
    } else {
        Judgement::none(Rule::E1, "no cryptographic library or marker")
    };
    (j, Family::Other)
}

/// E4: AWS-LC's FIPS module, certificate by its major version (as aws-lc-rs documents).
fn aws_lc_fips(ctx: &Context<'_>, version: Option<&str>) -> Judgement {
    let major = version.and_then(|v| v.split('.').next());
    let number = match major {
        Some("2") => Some("4816"),
        Some("3") => Some("5314"),
        _ => None,
    };
    let name = format!("AWS-LC FIPS {}", version.unwrap_or("(unknown version)"));
    let j = if major == Some("4") {
        let mut j = Judgement::warn(
            Rule::E4,
            ErrorName::ModuleInProcess,
            "AWS-LC FIPS 4.x: in process, not validated yet",
        );
        j.module = Some(module(
            &name,
            None,
            "FIPS 140-3",
            CertificateStatus::InProcess,
        ));
        j
    } else {
        certify(
            ctx,
            Rule::E4,
            &name,
            number,
            "AWS-LC's FIPS module is linked in",
        )
    };
    j.crypto("aws-lc-fips")
}

/// J1: Bouncy Castle in jars.
fn judge_jar(path: &str, jar: &JarFacts, ctx: &Context<'_>) -> Vec<Finding> {
    let j = match (&jar.bc_fips, &jar.bcprov) {
        (Some(v), _) => {
            let v = v.as_deref().unwrap_or("(unknown version)");
            certify(
                ctx,
                Rule::J1,
                &format!("BC-FJA {v}"),
                None,
                "BouncyCastleFipsProvider",
            )
            .crypto(format!("bc-fips {v}"))
        }
        (None, Some(v)) => {
            let v = v.as_deref().unwrap_or("(unknown version)");
            Judgement::warn(
                Rule::J1,
                ErrorName::BouncyCastleNotFIPS,
                format!("Bouncy Castle's plain provider {v}, not BC-FJA"),
            )
            .crypto(format!("bcprov {v}"))
        }
        (None, None) => Judgement::none(Rule::J1, "no Bouncy Castle provider"),
    };
    let mut out = vec![place(path, FileKind::Jar, None, j)];
    for (name, inner) in &jar.nested {
        out.extend(judge_jar(&format!("{path}!/{name}"), inner, ctx));
    }
    out
}

/// The profile's link-method policy over a judgement that found a module.
fn apply_profile(profile: Profile, j: Judgement, family: Family, elf: &ElfFacts) -> Judgement {
    if matches!(
        j.verdict,
        Verdict::Fail | Verdict::NotApplicable | Verdict::Unknown
    ) {
        return j;
    }
    let go = elf.go.is_some();
    let (error, why) = match (profile, family) {
        (Profile::VendorStaticBoring, Family::GoBoring) if !elf.is_static() => {
            (ErrorName::NotStaticLinked, "Go binaries must be static")
        }
        (Profile::VendorStaticBoring, Family::GoNative | Family::GoOpenSsl) if go => (
            ErrorName::NotBoringCrypto,
            "Go binaries must use BoringCrypto",
        ),
        (Profile::RedhatDynamicOpenssl, Family::GoBoring) => (
            ErrorName::NotOpenSSL,
            "Go binaries must use OpenSSL (golang-fips) or Go's own module",
        ),
        (Profile::RedhatDynamicOpenssl, Family::Embedded) => (
            ErrorName::NotOpenSSL,
            "cryptography must come from the system's OpenSSL",
        ),
        _ => return j,
    };
    Judgement {
        verdict: Verdict::Fail,
        error: Some(error),
        reason: format!("{}; profile {}: {why}", j.reason, profile.as_str()),
        ..j
    }
}
