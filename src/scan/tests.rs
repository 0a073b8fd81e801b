//! The rules end to end over synthetic files in a [`MemTree`]: every rule of the table, the
//! profiles, runtime overrides, exceptions and the bounds.

use super::goinfo::encode;
use super::testelf::{Spec, build};
use super::*;
use crate::catalog::Catalog;

const INTERP: &str = "/lib64/ld-linux-x86-64.so.2";

fn go_bin(version: &str, settings: &[(&str, &str)], markers: &[u8], dynamic: bool) -> Vec<u8> {
    build(&Spec {
        interp: dynamic.then_some(INTERP),
        needed: if dynamic { &["libc.so.6"] } else { &[] },
        buildinfo: Some(encode(version, "example.com/app", settings)),
        extra: markers,
        ..Spec::default()
    })
}

fn c_bin(interp: bool, needed: &[&str], extra: &[u8]) -> Vec<u8> {
    build(&Spec {
        dyn_type: interp,
        interp: interp.then_some(INTERP),
        needed,
        extra,
        ..Spec::default()
    })
}

fn library(soname: &str, needed: &[&str], extra: &[u8]) -> Vec<u8> {
    build(&Spec {
        dyn_type: true,
        needed,
        soname: Some(soname),
        extra,
        ..Spec::default()
    })
}

fn certificates() -> Vec<Certificate> {
    Catalog::embedded().certificates().to_vec()
}

struct Run<'a> {
    profile: Profile,
    env: &'a [&'a str],
    date: &'a str,
    certificates: Vec<Certificate>,
    exceptions: Exceptions,
    max: u64,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Self {
            profile: Profile::Any,
            env: &[],
            date: "2026-06-01",
            certificates: certificates(),
            exceptions: Exceptions::default(),
            max: 1 << 20,
        }
    }
}

impl Run<'_> {
    fn scan(&self, tree: &MemTree) -> Report {
        let input = ScanInput {
            profile: self.profile,
            env: self.env.iter().map(|s| s.to_string()).collect(),
            certificates: &self.certificates,
            exceptions: &self.exceptions,
            subject: Subject::default(),
            today: self.date.parse().unwrap(),
            limits: Limits {
                max_file_bytes: self.max,
            },
        };
        scan(tree, &input).unwrap()
    }
}

/// (verdict, error, rule, certificate) of the file at `path`.
type Row = (Verdict, Option<ErrorName>, Rule, Option<String>);

fn row(report: &Report, path: &str) -> Row {
    let f = (report.findings.iter())
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no finding for {path}: {:#?}", report.findings));
    let cert = f.module.as_ref().and_then(|m| m.certificate.clone());
    (f.verdict, f.error, f.rule, cert)
}

fn one(bytes: Vec<u8>, run: &Run<'_>) -> Row {
    let report = run.scan(&MemTree::new().file("/app/bin", true, bytes));
    row(&report, "/app/bin")
}

use ErrorName as E;
use Verdict as V;

const BORING: &[u8] = b"\0crypto/sha256.New\0crypto/internal/boring/sig.BoringCrypto\0_Cfunc__goboringcrypto_SHA256\0";
const STANDARD: &[u8] = b"\0crypto/sha256.New\0crypto/internal/boring/sig.StandardCrypto\0";
const GO_FIPS: &[u8] = b"\0crypto/internal/fips140/v1.0.0-c2097c7c/sha256.Block\0crypto/internal/boring/sig.StandardCrypto\0";

#[test]
fn the_elf_facts_say_type_link_needed_and_arch() {
    let bin = c_bin(true, &["libcrypto.so.3", "libc.so.6"], b"");
    let facts = elf::read(&bin, "/usr/bin/x", true).unwrap().unwrap();
    assert_eq!(facts.elf_type, elf::ElfType::Executable);
    assert_eq!(facts.arch, "amd64");
    assert_eq!(facts.interp.as_deref(), Some(INTERP));
    assert_eq!(facts.needed, ["libcrypto.so.3", "libc.so.6"]);
    assert!(!facts.is_static() && facts.dynamic);
    let lib = elf::read(&library("libx.so.1", &[], b""), "/usr/lib/libx.so.1", false)
        .unwrap()
        .unwrap();
    assert_eq!(
        (lib.elf_type, lib.soname.as_deref()),
        (elf::ElfType::SharedObject, Some("libx.so.1"))
    );
    let go = go_bin("go1.19.8", &[("CGO_ENABLED", "0")], b"", false);
    let facts = elf::read(&go, "/app", true).unwrap().unwrap();
    assert!(facts.is_static());
    assert_eq!(facts.go.unwrap().setting("CGO_ENABLED"), Some("0"));
    // Without section headers the build information is found by its magic.
    let mut headerless = go.clone();
    headerless[60..64].copy_from_slice(&[0; 4]); // e_shnum, e_shstrndx
    headerless[40..48].copy_from_slice(&[0; 8]); // e_shoff
    let facts = elf::read(&headerless, "/app", true).unwrap().unwrap();
    assert_eq!(facts.go.unwrap().version, "go1.19.8");
    assert!(elf::read(b"\x7fELF\x02\x01\x01", "/x", true).is_err());
}

#[test]
fn go_rules_follow_the_linked_code_not_the_flags() {
    let run = Run::default();
    let boring = [("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")];
    let trap = [("CGO_ENABLED", "0"), ("GOEXPERIMENT", "boringcrypto")];
    let cases: Vec<(&str, Vec<u8>, Row)> = vec![
        (
            "no crypto",
            go_bin("go1.19.8", &[], b"\0fmt.Println\0", false),
            (V::NotApplicable, None, Rule::G1, None),
        ),
        (
            "boring 1.19",
            go_bin("go1.19.8 X:boringcrypto", &boring, BORING, true),
            (V::Pass, None, Rule::G6, Some("3678".into())),
        ),
        (
            "boring 1.24",
            go_bin("go1.24.2 X:boringcrypto", &boring, BORING, false),
            (V::Pass, None, Rule::G6, Some("4735".into())),
        ),
        (
            "the trap",
            go_bin("go1.19.8 X:boringcrypto", &trap, STANDARD, false),
            (V::Fail, Some(E::GoBoringNotLinked), Rule::G7, None),
        ),
        (
            "boring, no sig",
            go_bin(
                "go1.19.8 X:boringcrypto",
                &trap,
                b"\0crypto/aes.New\0",
                false,
            ),
            (V::Unknown, Some(E::GoCryptoUndetermined), Rule::G7, None),
        ),
        (
            "standard",
            go_bin("go1.22.1", &[], STANDARD, false),
            (V::Fail, Some(E::GoStandardCrypto), Rule::G10, None),
        ),
        (
            "x/crypto",
            go_bin("go1.22.1", &[], b"\0golang.org/x/crypto/ssh.Dial\0", false),
            (V::Fail, Some(E::GoStandardCrypto), Rule::G10, None),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(one(bytes, &run), want, "{name}");
    }
}

#[test]
fn go_native_fips_rules() {
    let run = Run::default();
    let cases: Vec<(&str, Vec<u8>, Row)> = vec![
        (
            "native v1.0.0",
            go_bin(
                "go1.25.1",
                &[
                    ("GOFIPS140", "v1.0.0-c2097c7c"),
                    ("DefaultGODEBUG", "fips140=on"),
                ],
                GO_FIPS,
                false,
            ),
            (V::Pass, None, Rule::G2, Some("5247".into())),
        ),
        (
            "native off",
            go_bin(
                "go1.25.1",
                &[("GOFIPS140", "v1.0.0-c2097c7c")],
                GO_FIPS,
                false,
            ),
            (V::Fail, Some(E::GoFIPSNotEnabled), Rule::G5, None),
        ),
        (
            "native v1.26.0",
            go_bin(
                "go1.26.6",
                &[("GOFIPS140", "v1.26.0"), ("DefaultGODEBUG", "fips140=on")],
                b"\0crypto/internal/fips140/v1.26.0/aes.New\0",
                false,
            ),
            (V::Warn, Some(E::ModuleInProcess), Rule::G3, None),
        ),
        (
            "native latest",
            go_bin(
                "go1.25.1",
                &[("GOFIPS140", "latest"), ("DefaultGODEBUG", "fips140=on")],
                b"\0crypto/internal/fips140/aes.New\0",
                false,
            ),
            (V::Fail, Some(E::GoFIPSUnvalidated), Rule::G4, None),
        ),
        (
            "only fips140=on",
            go_bin(
                "go1.25.1",
                &[("DefaultGODEBUG", "fips140=only")],
                STANDARD,
                false,
            ),
            (V::Fail, Some(E::GoFIPSUnvalidated), Rule::G4, None),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(one(bytes, &run), want, "{name}");
    }
}

#[test]
fn golang_fips_openssl_needs_cgo_dynamic_and_the_strict_tag() {
    let run = Run::default();
    let marker: &[u8] = b"\0crypto/sha256.New\0vendor/github.com/golang-fips/openssl/v2.dlopen\0";
    let strict = [("CGO_ENABLED", "1"), ("-tags", "strictfipsruntime")];
    let cases: Vec<(&str, Vec<u8>, Row)> = vec![
        (
            "no cgo",
            go_bin("go1.22.7", &[("CGO_ENABLED", "0")], marker, false),
            (V::Fail, Some(E::GoNotCgoEnabled), Rule::G8, None),
        ),
        (
            "static",
            go_bin("go1.22.7", &strict, marker, false),
            (V::Fail, Some(E::NotDynLinked), Rule::G8, None),
        ),
        (
            "no tag",
            go_bin("go1.22.7", &[("CGO_ENABLED", "1")], marker, true),
            (V::Fail, Some(E::GoNoStrictFIPSRuntime), Rule::G8, None),
        ),
        (
            "no provider",
            go_bin("go1.22.7", &strict, marker, true),
            (V::Fail, Some(E::NoFIPSProvider), Rule::O1, None),
        ),
        (
            "systemcrypto",
            go_bin(
                "go1.22.7",
                &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "systemcrypto")],
                marker,
                true,
            ),
            (V::Warn, Some(E::GoSystemCryptoNotRequired), Rule::G9, None),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(one(bytes, &run), want, "{name}");
    }
    // With a validated, installed and active provider, the OpenSSL rules pass it.
    let tree = provider_tree("3.1.2", false, Mac::Right, true).file(
        "/app/bin",
        true,
        go_bin("go1.22.7", &strict, marker, true),
    );
    assert_eq!(
        row(&run.scan(&tree), "/app/bin"),
        (V::Pass, None, Rule::G8, Some("4985".into()))
    );
}

#[test]
fn other_elf_rules() {
    let run = Run::default();
    let cases: Vec<(&str, Vec<u8>, Row)> = vec![
        (
            "no crypto",
            c_bin(true, &["libc.so.6"], b""),
            (V::NotApplicable, None, Rule::E1, None),
        ),
        (
            "libcrypto, no provider",
            c_bin(true, &["libcrypto.so.3"], b""),
            (V::Fail, Some(E::NoFIPSProvider), Rule::O1, None),
        ),
        (
            "libssl 1.1",
            c_bin(true, &["libssl.so.1.1"], b""),
            (V::Unknown, Some(E::OpenSSLLegacy), Rule::E1, None),
        ),
        (
            "static",
            c_bin(false, &[], b"hello"),
            (V::Fail, Some(E::NotDynLinked), Rule::E2, None),
        ),
        (
            "embedded openssl",
            c_bin(true, &["libc.so.6"], b"\0OpenSSL 3.3.2 3 Sep 2024\0"),
            (V::Fail, Some(E::EmbeddedOpenSSL), Rule::E3, None),
        ),
        (
            "static embedded openssl",
            c_bin(false, &[], b"\0OpenSSL 1.1.1w  11 Sep 2023\0"),
            (V::Fail, Some(E::EmbeddedOpenSSL), Rule::E3, None),
        ),
        (
            "aws-lc fips 3, not in the table",
            c_bin(
                false,
                &[],
                b"aws_lc_fips_0_13_7_SHA256\0AWS-LC FIPS 3.0.0\0",
            ),
            (
                V::Warn,
                Some(E::CertificateNotInCatalog),
                Rule::E4,
                Some("5314".into()),
            ),
        ),
        (
            "aws-lc fips 4",
            c_bin(
                false,
                &[],
                b"aws_lc_fips_0_14_4_SHA256\0AWS-LC FIPS 4.2.0\0",
            ),
            (V::Warn, Some(E::ModuleInProcess), Rule::E4, None),
        ),
        (
            "aws-lc",
            c_bin(true, &["libc.so.6"], b"aws_lc_0_29_0_SHA256\0"),
            (V::Fail, Some(E::NonFIPSRustCrypto), Rule::E5, None),
        ),
        (
            "ring",
            c_bin(true, &["libc.so.6"], b"ring_core_0_17_8_sha256\0"),
            (V::Fail, Some(E::NonFIPSRustCrypto), Rule::E5, None),
        ),
        (
            "boringssl-fips",
            c_bin(true, &["libc.so.6"], b"BoringSSL-FIPS 20230428\0"),
            (V::Warn, Some(E::CertificateNotInCatalog), Rule::E6, None),
        ),
        (
            "gnutls",
            c_bin(true, &["libgnutls.so.30"], b""),
            (V::Warn, Some(E::OtherCryptoLibrary), Rule::E7, None),
        ),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(one(bytes, &run), want, "{name}");
    }
}

#[test]
fn a_catalogue_certificate_makes_a_module_pass() {
    // A catalogue file that adds the certificate makes AWS-LC FIPS 3 pass.
    let mut certs = certificates();
    certs.push(Certificate {
        number: "5314".into(),
        module: "AWS-LC Cryptographic Module (static)".into(),
        standard: "FIPS 140-3".into(),
        status: crate::domain::fips::CertificateStatus::Active,
        sunset: None,
        source: "test".into(),
    });
    let run = Run {
        certificates: certs,
        ..Run::default()
    };
    let bytes = c_bin(
        false,
        &[],
        b"aws_lc_fips_0_13_7_SHA256\0AWS-LC FIPS 3.0.0\0",
    );
    assert_eq!(
        one(bytes, &run),
        (V::Pass, None, Rule::E4, Some("5314".into()))
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Mac {
    Right,
    Wrong,
    None,
}

const ACTIVATING: &str = "openssl_conf = openssl_init\n.include fipsmodule.cnf\n[openssl_init]\n\
    providers = provider_sect\nalg_section = algorithm_sect\n[provider_sect]\nfips = fips_sect\n\
    [algorithm_sect]\ndefault_properties = fips=yes\n";

/// An image with libcrypto, a `fips.so` of `version`, its `fipsmodule.cnf` and `openssl.cnf`.
fn provider_tree(version: &str, red_hat: bool, mac: Mac, active: bool) -> MemTree {
    let vendor = if red_hat {
        "Red Hat Enterprise Linux 9 - "
    } else {
        ""
    };
    let rodata = format!("\0{vendor}OpenSSL FIPS Provider\0{version}\0");
    let fips = library("fips.so", &["libc.so.6"], rodata.as_bytes());
    let right: Vec<String> = openssl::module_mac(&fips)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let mut tree = MemTree::new()
        .file(
            "/usr/lib64/libcrypto.so.3",
            false,
            library(
                "libcrypto.so.3",
                &["libc.so.6"],
                b"OpenSSL 3.0.7 1 Nov 2022",
            ),
        )
        .file(
            "/usr/bin/client",
            true,
            c_bin(true, &["libcrypto.so.3"], b""),
        )
        .file("/usr/lib64/ossl-modules/fips.so", false, fips);
    let mac_line = match mac {
        Mac::Right => format!("module-mac = {}\n", right.join(":")),
        Mac::Wrong => format!("module-mac = 00:{}\n", right[1..].join(":")),
        Mac::None => String::new(),
    };
    if mac != Mac::None {
        tree = tree.file(
            "/etc/ssl/fipsmodule.cnf",
            false,
            format!("[fips_sect]\nactivate = 1\n{mac_line}"),
        );
    }
    let config = if active {
        ACTIVATING.to_string()
    } else {
        "openssl_conf = openssl_init\n[openssl_init]\n".into()
    };
    tree.file("/etc/ssl/openssl.cnf", false, config)
        .symlink("/usr/lib/ssl/openssl.cnf", "../../../etc/ssl/openssl.cnf")
}

#[test]
fn openssl_provider_rules() {
    let run = Run::default();
    let client = |tree: MemTree, run: &Run<'_>| row(&run.scan(&tree), "/usr/bin/client");
    let cases = [
        (
            "3.1.2 installed and active",
            provider_tree("3.1.2", false, Mac::Right, true),
            (V::Pass, None, Rule::E1, Some("4985".into())),
        ),
        (
            "tampered",
            provider_tree("3.1.2", false, Mac::Wrong, true),
            (V::Fail, Some(E::ProviderMACMismatch), Rule::O3, None),
        ),
        (
            "never installed",
            provider_tree("3.1.2", false, Mac::None, true),
            (V::Fail, Some(E::ProviderNotInstalled), Rule::O3, None),
        ),
        (
            "inactive",
            provider_tree("3.1.2", false, Mac::Right, false),
            (V::Warn, Some(E::ProviderInactive), Rule::O4, None),
        ),
        (
            "3.5.9",
            provider_tree("3.5.9", false, Mac::Right, true),
            (V::Warn, Some(E::ProviderNotValidated), Rule::O2, None),
        ),
        (
            "Red Hat, MAC inside",
            provider_tree("3.0.7", true, Mac::None, false),
            (V::Pass, None, Rule::E1, Some("4857".into())),
        ),
        (
            "3.0.9 before the 140-2 sunset",
            provider_tree("3.0.9", false, Mac::Right, true),
            (V::Pass, None, Rule::E1, Some("4282".into())),
        ),
    ];
    for (name, tree, want) in cases {
        assert_eq!(client(tree, &run), want, "{name}");
    }
    let after = Run {
        date: "2026-10-01",
        ..Run::default()
    };
    let tree = provider_tree("3.0.9", false, Mac::Right, true);
    let report = after.scan(&tree);
    assert_eq!(
        row(&report, "/usr/bin/client").1,
        Some(E::CertificateHistorical)
    );
    assert_eq!(row(&report, "/usr/lib64/ossl-modules/fips.so").0, V::Warn);
    assert_eq!(report.status, Status::Unknown);
    let report = run.scan(&provider_tree("3.1.2", false, Mac::Right, true));
    assert_eq!(report.status, Status::Full);
    assert_eq!(
        row(&report, "/usr/lib64/libcrypto.so.3").0,
        V::Pass,
        "libcrypto itself follows its provider"
    );
    assert_eq!(report.modules.len(), 1);
}

#[test]
fn profiles_judge_only_the_link_method() {
    let boring = [("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")];
    let native = [
        ("GOFIPS140", "v1.0.0-c2097c7c"),
        ("DefaultGODEBUG", "fips140=on"),
    ];
    let dynamic_boring = go_bin("go1.19.8 X:boringcrypto", &boring, BORING, true);
    let static_boring = go_bin("go1.19.8 X:boringcrypto", &boring, BORING, false);
    let go_fips = go_bin("go1.25.1", &native, GO_FIPS, false);
    let standard = go_bin("go1.22.1", &[], STANDARD, false);
    let aws = c_bin(false, &[], b"aws_lc_fips_0_12_1_x\0AWS-LC FIPS 2.0.1\0");
    let with = |profile| Run {
        profile,
        ..Run::default()
    };
    let (any, vendor, redhat) = (
        with(Profile::Any),
        with(Profile::VendorStaticBoring),
        with(Profile::RedhatDynamicOpenssl),
    );
    let verdict = |b: &Vec<u8>, run: &Run<'_>| {
        let r = one(b.clone(), run);
        (r.0, r.1)
    };
    assert_eq!(verdict(&dynamic_boring, &any), (V::Pass, None));
    assert_eq!(
        verdict(&dynamic_boring, &vendor),
        (V::Fail, Some(E::NotStaticLinked))
    );
    assert_eq!(verdict(&static_boring, &vendor), (V::Pass, None));
    assert_eq!(
        verdict(&go_fips, &vendor),
        (V::Fail, Some(E::NotBoringCrypto))
    );
    assert_eq!(
        verdict(&static_boring, &redhat),
        (V::Fail, Some(E::NotOpenSSL))
    );
    assert_eq!(verdict(&go_fips, &redhat), (V::Pass, None));
    assert_eq!(verdict(&aws, &redhat), (V::Fail, Some(E::NotOpenSSL)));
    // A failure stays the failure it is.
    for run in [&any, &vendor, &redhat] {
        assert_eq!(
            verdict(&standard, run),
            (V::Fail, Some(E::GoStandardCrypto))
        );
    }
}

#[test]
fn runtime_overrides_defeat_build_time_fips() {
    let native = [
        ("GOFIPS140", "v1.0.0-c2097c7c"),
        ("DefaultGODEBUG", "fips140=on"),
    ];
    let tree = MemTree::new().file(
        "/app/bin",
        true,
        go_bin("go1.25.1", &native, GO_FIPS, false),
    );
    let run = Run {
        env: &["PATH=/bin", "GODEBUG=http2client=0,fips140=off"],
        ..Run::default()
    };
    let report = run.scan(&tree);
    assert_eq!(
        row(&report, "env:GODEBUG"),
        (V::Fail, Some(E::RuntimeFIPSOff), Rule::R1, None)
    );
    assert_eq!(report.status, Status::None);
    let back_on = Run {
        env: &["GODEBUG=fips140=off,fips140=on"],
        ..Run::default()
    };
    assert_eq!(back_on.scan(&tree).status, Status::Full);
    let nothing = Run {
        env: &["GOFIPS=0"],
        ..Run::default()
    };
    assert_eq!(
        row(&nothing.scan(&tree), "env:GOFIPS").0,
        V::Warn,
        "no golang-fips binary to defeat"
    );
    let tree = provider_tree("3.1.2", false, Mac::Right, true);
    let elsewhere = Run {
        env: &["OPENSSL_MODULES=/opt/none"],
        ..Run::default()
    };
    let report = elsewhere.scan(&tree);
    assert_eq!(
        row(&report, "env:OPENSSL_MODULES"),
        (V::Fail, Some(E::OpenSSLModulesOverride), Rule::R1, None)
    );
    assert_eq!(row(&report, "/usr/bin/client").1, Some(E::NoFIPSProvider));
    let inactive_conf = Run {
        env: &["OPENSSL_CONF=/etc/ssl/fipsmodule.cnf"],
        ..Run::default()
    };
    let report = inactive_conf.scan(&tree);
    assert_eq!(
        row(&report, "env:OPENSSL_CONF").1,
        Some(E::OpenSSLConfOverride)
    );
    assert_eq!(row(&report, "/usr/bin/client").1, Some(E::ProviderInactive));
}

#[test]
fn exceptions_turn_accepted_failures_into_partial() {
    let tree = MemTree::new()
        .file("/bin/busybox", true, c_bin(false, &[], b"busybox"))
        .file(
            "/app/bin",
            true,
            go_bin(
                "go1.19.8 X:boringcrypto",
                &[("CGO_ENABLED", "1")],
                BORING,
                false,
            ),
        );
    let report = Run::default().scan(&tree);
    assert_eq!(report.status, Status::None);
    let suggested = suggest(&report, &Subject::default());
    let yaml = serde_saphyr::to_string(&suggested).unwrap();
    let back = Exceptions::from_yaml(&yaml).unwrap();
    assert_eq!(back, suggested);
    assert_eq!(back.exceptions[0].paths, ["/bin/busybox"]);
    assert_eq!(back.exceptions[0].error, Some(E::NotDynLinked));
    let report = Run {
        exceptions: back,
        ..Run::default()
    }
    .scan(&tree);
    assert_eq!(report.status, Status::Partial);
    assert_eq!(report.counts.excepted, 1);
    // An exception for another error accepts nothing.
    let other =
        Exceptions::from_yaml("exceptions:\n  - paths: [/bin/]\n    error: EmbeddedOpenSSL\n")
            .unwrap();
    assert_eq!(
        Run {
            exceptions: other,
            ..Run::default()
        }
        .scan(&tree)
        .status,
        Status::None
    );
}

#[test]
fn bounds_and_jars() {
    let big = go_bin("go1.22.1", &[], STANDARD, false);
    let tree = MemTree::new()
        .file("/app/bin", true, big.clone())
        .file("/notes.txt", false, vec![b'x'; 4096])
        .file("/tiny", true, "\x7fE");
    assert!(big.len() > 256);
    let small = Run {
        max: 256,
        ..Run::default()
    };
    let report = small.scan(&tree);
    assert_eq!(
        row(&report, "/app/bin"),
        (V::Unknown, Some(E::TooLarge), Rule::X, None)
    );
    assert_eq!(
        (report.status, report.findings.len(), report.files_scanned),
        (Status::Unknown, 1, 3)
    );
    let jar = |class: &str, pom: &str| {
        jar::stored_zip(&[
            (class, b"x".as_slice()),
            (pom, b"version=2.0.1\n".as_slice()),
        ])
    };
    let fips = jar(
        "org/bouncycastle/jcajce/provider/BouncyCastleFipsProvider.class",
        "META-INF/maven/org.bouncycastle/bc-fips/pom.properties",
    );
    let plain = jar(
        "org/bouncycastle/jce/provider/BouncyCastleProvider.class",
        "META-INF/maven/org.bouncycastle/bcprov-jdk18on/pom.properties",
    );
    let tree = MemTree::new()
        .file("/opt/bc-fips.jar", false, fips)
        .file("/opt/bcprov.jar", false, plain)
        .file("/opt/broken.jar", false, "PK\x03\x04 cut short");
    let report = Run::default().scan(&tree);
    assert_eq!(
        row(&report, "/opt/bc-fips.jar"),
        (V::Warn, Some(E::CertificateNotInCatalog), Rule::J1, None)
    );
    assert_eq!(
        row(&report, "/opt/bcprov.jar").1,
        Some(E::BouncyCastleNotFIPS)
    );
    assert_eq!(row(&report, "/opt/broken.jar").1, Some(E::Unreadable));
}
