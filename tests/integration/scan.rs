//! `fipsgate scan --rootfs` as a user runs it: on copies of the host's own binaries (plain
//! `cargo test`), and on the real fixtures `tests/fixtures/scan/build.sh` builds (Go 1.19
//! standard, BoringCrypto dynamic and static, the boringcrypto-without-cgo trap, stripped
//! builds, C static and libcrypto programs, a real OpenSSL FIPS provider, the `cryptography`
//! wheel's embedded OpenSSL, Debian's Bouncy Castle): every fixture's expected verdict.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fipsgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `scan -o json` of a root filesystem: (exit code, report).
fn scan_json(root: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["scan", "--rootfs", root.to_str().unwrap(), "-o", "json"];
    args.extend(extra);
    args.extend(["--date", "2026-06-01"]);
    let out = fipsgate(&args);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code().unwrap(), doc)
}

/// The finding of `path`: (verdict, error, rule, certificate).
fn finding(report: &serde_json::Value, path: &str) -> (String, String, String, String) {
    let all = report["findings"].as_array().unwrap();
    let f = (all.iter())
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no finding for {path}: {report:#}"));
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    (
        s(&f["verdict"]),
        s(&f["error"]),
        s(&f["rule"]),
        s(&f["module"]["certificate"]),
    )
}

/// A root filesystem holding copies of host files at the same paths.
fn host_root(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let to = dir.path().join(f.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(f, &to).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
    dir
}

#[test]
fn host_binaries_without_and_with_libcrypto() {
    let plain = host_root(&["/bin/true"]);
    let (code, report) = scan_json(plain.path(), &[]);
    assert_eq!((code, report["status"].as_str()), (0, Some("full")));
    assert_eq!(finding(&report, "/bin/true").0, "N/A");
    // The openssl program needs libcrypto, and the image has no FIPS provider.
    let openssl = host_root(&["/bin/true", "/usr/bin/openssl"]);
    let (code, report) = scan_json(openssl.path(), &[]);
    assert_eq!((code, report["status"].as_str()), (1, Some("none")));
    let f = finding(&report, "/usr/bin/openssl");
    assert_eq!(
        (f.0.as_str(), f.1.as_str(), f.2.as_str()),
        ("FAIL", "NoFIPSProvider", "O1")
    );
    let table = fipsgate(&["scan", "--rootfs", openssl.path().to_str().unwrap()]);
    let out = text(&table.stdout);
    assert!(out.starts_with("PATH "), "{out}");
    assert!(
        out.contains("/usr/bin/openssl  FAIL     O1    NoFIPSProvider"),
        "{out}"
    );
    assert!(
        out.contains(": none (profile any; 2 files scanned, 2 judged: 1 FAIL, 1 N/A)"),
        "{out}"
    );
    assert!(
        out.contains("not shown: 1 file without cryptography (N/A; -o wide lists them)"),
        "{out}"
    );
    let md = fipsgate(&[
        "scan",
        "--rootfs",
        openssl.path().to_str().unwrap(),
        "-o",
        "markdown",
    ]);
    let md = text(&md.stdout);
    assert!(
        md.contains("**none**") && md.contains("| `/usr/bin/openssl` | executable |"),
        "{md}"
    );
}

#[test]
fn printed_exceptions_accept_what_failed() {
    let root = host_root(&["/usr/bin/openssl"]);
    let r = root.path().to_str().unwrap();
    let printed = fipsgate(&[
        "scan",
        "--rootfs",
        r,
        "--print-exceptions",
        "--component",
        "tools",
    ]);
    assert_eq!(printed.status.code(), Some(1));
    let yaml = text(&printed.stdout);
    assert!(
        yaml.contains("error: NoFIPSProvider") && yaml.contains("component: tools"),
        "{yaml}"
    );
    let file = root.path().join("exceptions.yaml");
    fs::write(&file, &yaml).unwrap();
    let file = file.to_str().unwrap();
    let (code, report) = scan_json(root.path(), &["--exceptions", file, "--component", "tools"]);
    assert_eq!((code, report["status"].as_str()), (1, Some("partial")));
    assert_eq!(report["counts"]["excepted"], 1);
    // For another component the exception does not apply.
    let (_, report) = scan_json(root.path(), &["--exceptions", file, "--component", "other"]);
    assert_eq!(report["status"], "none");
}

#[test]
fn usage_errors_exit_2() {
    let missing = fipsgate(&["scan", "--rootfs", "/nonexistent/rootfs"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/rootfs"));
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let env = fipsgate(&["scan", "--rootfs", r, "--env", "GODEBUG"]);
    assert_eq!(env.status.code(), Some(2));
    assert!(text(&env.stderr).contains("KEY=VALUE"));
    let bad = root.path().join("bad.yaml");
    fs::write(&bad, "exceptions:\n  - paths: [relative]\n").unwrap();
    let out = fipsgate(&["scan", "--rootfs", r, "--exceptions", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("must be absolute"),
        "{}",
        text(&out.stderr)
    );
    // An empty root filesystem has nothing that fails.
    assert_eq!(fipsgate(&["scan", "--rootfs", r]).status.code(), Some(0));
}

/// The fixtures' directory: `$FIPSGATE_SCAN_FIXTURES` (tests/run.sh sets it), else the cache
/// entry of the current build script.
pub(crate) fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("FIPSGATE_SCAN_FIXTURES") {
        return PathBuf::from(dir);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scan/build.sh");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &fs::read(script).unwrap());
    let key: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let dir = cache.join("fipsgate-tests/scan").join(key);
    assert!(
        dir.join(".complete").exists(),
        "{} is not built: run tests/fixtures/scan/build.sh",
        dir.display()
    );
    dir
}

/// (root filesystem, file, verdict, error, rule, certificate, image status).
#[rustfmt::skip]
const FIXTURES: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    ("go-standard", "/usr/local/bin/go-standard", "FAIL", "GoStandardCrypto", "G10", "-", "none"),
    ("go-standard-stripped", "/usr/local/bin/go-standard-stripped", "FAIL", "GoStandardCrypto", "G10", "-", "none"),
    ("go-boring-dynamic", "/usr/local/bin/go-boring-dynamic", "PASS", "-", "G6", "3678", "full"),
    ("go-boring-static", "/usr/local/bin/go-boring-static", "PASS", "-", "G6", "3678", "full"),
    ("go-boring-stripped", "/usr/local/bin/go-boring-stripped", "PASS", "-", "G6", "3678", "full"),
    ("go-boring-nocgo", "/usr/local/bin/go-boring-nocgo", "FAIL", "GoBoringNotLinked", "G7", "-", "none"),
    ("go-nocrypto", "/usr/local/bin/go-nocrypto", "N/A", "-", "G1", "-", "full"),
    ("go126-fips-v1.0.0", "/usr/local/bin/go126-fips-v1.0.0", "PASS", "-", "G2", "5247", "full"),
    ("go126-fips-v1.0.0-stripped", "/usr/local/bin/go126-fips-v1.0.0-stripped", "PASS", "-", "G2", "5247", "full"),
    ("go126-fips-v1.0.0-arm64", "/usr/local/bin/go126-fips-v1.0.0-arm64", "PASS", "-", "G2", "5247", "full"),
    ("go126-fips-v1.26.0", "/usr/local/bin/go126-fips-v1.26.0", "WARN", "ModuleInProcess", "G3", "-", "unknown"),
    ("go126-fips-latest", "/usr/local/bin/go126-fips-latest", "FAIL", "GoFIPSUnvalidated", "G4", "-", "none"),
    ("go126-fips-off", "/usr/local/bin/go126-fips-off", "FAIL", "GoFIPSNotEnabled", "G5", "-", "none"),
    ("go126-boring", "/usr/local/bin/go126-boring", "PASS", "-", "G6", "4735", "full"),
    ("go126-standard", "/usr/local/bin/go126-standard", "FAIL", "GoStandardCrypto", "G10", "-", "none"),
    ("c-static", "/usr/local/bin/c-static", "FAIL", "NotDynLinked", "E2", "-", "none"),
    ("c-libcrypto", "/usr/local/bin/c-libcrypto", "FAIL", "NoFIPSProvider", "O1", "-", "none"),
    ("openssl-no-provider", "/usr/bin/c-libcrypto", "FAIL", "NoFIPSProvider", "O1", "-", "none"),
    ("openssl-provider", "/usr/bin/c-libcrypto", "WARN", "ProviderNotValidated", "O2", "-", "unknown"),
    ("openssl-provider", "/usr/lib/x86_64-linux-gnu/ossl-modules/fips.so", "WARN", "ProviderNotValidated", "O2", "-", "unknown"),
    ("openssl-provider-inactive", "/usr/bin/c-libcrypto", "WARN", "ProviderInactive", "O4", "-", "unknown"),
    ("openssl-provider-tampered", "/usr/bin/c-libcrypto", "FAIL", "ProviderMACMismatch", "O3", "-", "none"),
    ("cryptography-wheel", "/usr/lib/python3/dist-packages/cryptography/hazmat/bindings/_rust.abi3.so", "FAIL", "EmbeddedOpenSSL", "E3", "-", "none"),
    ("bcprov", "/usr/share/java/bcprov.jar", "WARN", "BouncyCastleNotFIPS", "J1", "-", "unknown"),
];

#[test]
#[ignore = "needs built scan fixtures: run tests/run.sh"]
fn every_fixture_gets_its_verdict() {
    let dir = fixtures();
    let mut wrong = Vec::new();
    for &(root, path, verdict, error, rule, cert, status) in FIXTURES {
        let (code, report) = scan_json(&dir.join("rootfs").join(root), &[]);
        let seen = finding(&report, path);
        let want = (
            verdict.to_string(),
            error.to_string(),
            rule.to_string(),
            cert.to_string(),
        );
        let want_code = if status == "full" { 0 } else { 1 };
        if seen != want || report["status"] != status || code != want_code {
            wrong.push(format!("{root} {path}: want {want:?} {status} exit {want_code}, seen {seen:?} {} exit {code}", report["status"]));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
#[ignore = "needs built scan fixtures: run tests/run.sh"]
fn fixture_facts_and_profiles() {
    let dir = fixtures();
    let root = |name: &str| dir.join("rootfs").join(name);
    let (_, report) = scan_json(&root("go-boring-static"), &[]);
    let f = &report["findings"][0];
    assert_eq!(
        (f["link"].as_str(), f["crypto"].as_str()),
        (Some("static"), Some("boringcrypto, fipsonly"))
    );
    assert_eq!(f["goVersion"], "go1.19.8 X:boringcrypto");
    assert_eq!(f["arch"], "amd64");
    let (_, report) = scan_json(&root("go-boring-dynamic"), &[]);
    assert_eq!(report["findings"][0]["link"], "dynamic");
    assert_eq!(report["modules"][0]["standard"], "FIPS 140-2");
    let (_, report) = scan_json(&root("go126-fips-v1.0.0-arm64"), &[]);
    let f = &report["findings"][0];
    assert_eq!(
        (
            f["arch"].as_str(),
            f["goVersion"].as_str(),
            f["crypto"].as_str()
        ),
        (
            Some("arm64"),
            Some("go1.26.6"),
            Some("go-fips140 v1.0.0-c2097c7c")
        )
    );
    assert_eq!(report["modules"][0]["standard"], "FIPS 140-3");
    let (_, report) = scan_json(&root("go126-boring"), &[]);
    assert_eq!(
        report["findings"][0]["goVersion"],
        "go1.26.6-X:boringcrypto"
    );
    let profile = |name: &str, p: &str| {
        let (code, report) = scan_json(&root(name), &["--profile", p]);
        let f = &report["findings"][0];
        (
            code,
            f["verdict"].as_str().unwrap().to_string(),
            f["error"].as_str().unwrap_or("-").to_string(),
        )
    };
    let v = |code, verdict: &str, error: &str| (code, verdict.to_string(), error.to_string());
    assert_eq!(
        profile("go-boring-dynamic", "vendor-static-boring"),
        v(1, "FAIL", "NotStaticLinked")
    );
    assert_eq!(
        profile("go-boring-static", "vendor-static-boring"),
        v(0, "PASS", "-")
    );
    assert_eq!(
        profile("go-boring-static", "redhat-dynamic-openssl"),
        v(1, "FAIL", "NotOpenSSL")
    );
    // Past the FIPS 140-2 sunset, #3678 is historical.
    let out = fipsgate(&[
        "scan",
        "--rootfs",
        root("go-boring-static").to_str().unwrap(),
        "--date",
        "2026-10-01",
        "-o",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["error"], "CertificateHistorical");
    assert_eq!(out.status.code(), Some(1));
    // The provider's identity and the package database agree; the MAC checks.
    let (_, report) = scan_json(&root("openssl-provider"), &[]);
    let provider = finding(&report, "/usr/lib/x86_64-linux-gnu/ossl-modules/fips.so");
    assert_eq!(provider.1, "ProviderNotValidated");
    let f = (report["findings"].as_array().unwrap().iter())
        .find(|f| f["kind"] == "fips-provider")
        .unwrap();
    assert!(
        f["module"]["name"]
            .as_str()
            .unwrap()
            .starts_with("OpenSSL FIPS Provider 3.5."),
        "{f}"
    );
}
