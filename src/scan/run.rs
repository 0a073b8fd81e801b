//! A scan's course: read the candidates through the tree (bounded), find the image's OpenSSL
//! provider and configuration, judge every file, add the runtime overrides (R1), apply the
//! exceptions and give the image its verdict.

use std::io::Read;

use crate::domain::fips::{CryptoModule, Status};

use super::elf;
use super::jar;
use super::markers;
use super::openssl::{self, Config};
use super::rules::{self, Context, Facts, Mac, Provider, ProviderFile};
use super::tree::{Index, Tree, normalize, parent};
use super::{
    Counts, ErrorName, FileKind, Finding, Limits, Report, Rule, ScanError, ScanInput, Verdict,
};

/// The most read of a configuration file.
pub(super) const MAX_CONFIG: u64 = 1 << 20;
/// Includes followed from `openssl.cnf`.
const MAX_CONFIG_FILES: usize = 32;

pub fn scan(tree: &dyn Tree, input: &ScanInput<'_>) -> Result<Report, ScanError> {
    let index = Index::new(tree.entries()?);
    let env = RuntimeEnv::parse(&input.env);
    let mut analysed = Vec::new();
    let mut files = 0;
    for (path, size, executable) in index.files() {
        files += 1;
        if let Some(facts) = analyse(tree, path, size, executable, input.limits) {
            analysed.push((path.to_string(), facts));
        }
    }
    let config = effective_config(tree, &index, &env);
    let ctx = Context {
        profile: input.profile,
        certificates: input.certificates,
        today: input.today,
        provider: provider(tree, &index, &analysed, &env, config.as_ref()),
    };
    let mut findings: Vec<Finding> = (analysed.iter())
        .flat_map(|(path, facts)| rules::judge(path, facts, &ctx))
        .collect();
    let env_rows = env_findings(&env, &findings, &ctx, config.is_some());
    findings.extend(env_rows);
    input.exceptions.apply(&input.subject, &mut findings);
    Ok(report(findings, input, files))
}

pub(super) fn is_jar(path: &str) -> bool {
    [".jar", ".war", ".ear"].iter().any(|e| path.ends_with(e))
}

fn is_provider(path: &str) -> bool {
    path.ends_with("/ossl-modules/fips.so")
}

/// A candidate's facts: ELF files and jars, read whole up to the limit. Other files: none.
fn analyse(
    tree: &dyn Tree,
    path: &str,
    size: u64,
    executable: bool,
    limits: Limits,
) -> Option<Facts> {
    let unreadable = |error, reason: String| Some(Facts::Unreadable { error, reason });
    let mut reader = match tree.open(path) {
        Ok(r) => r,
        Err(e) if executable || is_jar(path) => {
            return unreadable(ErrorName::Unreadable, e.to_string());
        }
        Err(_) => return None,
    };
    let mut data = Vec::new();
    (&mut reader).take(4).read_to_end(&mut data).ok()?;
    let elf = data == b"\x7fELF";
    if !(elf || (is_jar(path) && data == b"PK\x03\x04")) {
        return None;
    }
    let max = limits.max_file_bytes;
    let too_large = |n: u64| {
        unreadable(
            ErrorName::TooLarge,
            format!("{n} bytes, over the {max}-byte scan limit"),
        )
    };
    if size > max {
        return too_large(size);
    }
    if let Err(e) = reader.take(max + 1 - 4).read_to_end(&mut data) {
        return unreadable(ErrorName::Unreadable, e.to_string());
    }
    if data.len() as u64 > max {
        return too_large(data.len() as u64);
    }
    if !elf {
        return Some(match jar::read(&data) {
            Ok(j) => Facts::Jar(j),
            Err(e) => Facts::Unreadable {
                error: ErrorName::Unreadable,
                reason: format!("not a readable jar: {e}"),
            },
        });
    }
    match elf::read(&data, path, executable) {
        Ok(Some(facts)) => {
            let markers = match facts.go {
                Some(_) => markers::go(&data),
                None => markers::native(&data),
            };
            let provider = is_provider(path).then(|| ProviderFile {
                identity: openssl::identify(&data),
                mac: openssl::module_mac(&data),
            });
            Some(Facts::Elf {
                elf: Box::new(facts),
                markers,
                provider,
            })
        }
        Ok(None) => None,
        Err(e) => unreadable(
            ErrorName::Unreadable,
            format!("not a readable ELF file: {e}"),
        ),
    }
}

/// A text file of the tree (symlinks followed inside it), bounded.
fn read_text(tree: &dyn Tree, index: &Index, path: &str) -> Option<String> {
    let real = index.resolve_file(path)?;
    let mut data = Vec::new();
    tree.open(&real)
        .ok()?
        .take(MAX_CONFIG)
        .read_to_end(&mut data)
        .ok()?;
    Some(String::from_utf8_lossy(&data).into_owned())
}

/// The `openssl.cnf` OpenSSL would load (`OPENSSL_CONF`, else the usual `OPENSSLDIR`s), with
/// its includes.
fn effective_config(tree: &dyn Tree, index: &Index, env: &RuntimeEnv) -> Option<(String, Config)> {
    let path = match &env.openssl_conf {
        Some(p) => index.resolve_file(p)?,
        None => (openssl::DEFAULT_CONFIGS.iter()).find_map(|p| index.resolve_file(p))?,
    };
    let mut config = Config::default();
    load_config(tree, index, &path, &mut config, 0);
    Some((path, config))
}

fn load_config(tree: &dyn Tree, index: &Index, path: &str, config: &mut Config, depth: usize) {
    if depth > 8 || config.files.len() >= MAX_CONFIG_FILES {
        return;
    }
    let Some(text) = read_text(tree, index, path) else {
        return;
    };
    config.files.push(path.to_string());
    for target in config.merge(openssl::parse(&text)) {
        let base = parent(path).unwrap_or("/");
        let target = match target.starts_with('/') {
            true => normalize(&target),
            false => normalize(&format!("{base}/{target}")),
        };
        match index.resolve(&target) {
            Some((dir, super::tree::EntryKind::Dir)) => {
                let inside: Vec<String> = (index.files_in(&dir))
                    .filter(|f| f.ends_with(".cnf") || f.ends_with(".conf"))
                    .map(str::to_string)
                    .collect();
                for f in inside {
                    load_config(tree, index, &f, config, depth + 1);
                }
            }
            Some((file, _)) => load_config(tree, index, &file, config, depth + 1),
            None => {}
        }
    }
}

/// The FIPS provider OpenSSL would load: `$OPENSSL_MODULES/fips.so`, else the image's
/// `**/ossl-modules/fips.so` (the first by path).
fn provider(
    tree: &dyn Tree,
    index: &Index,
    analysed: &[(String, Facts)],
    env: &RuntimeEnv,
    config: Option<&(String, Config)>,
) -> Option<Provider> {
    let wanted =
        (env.openssl_modules.as_deref()).map(|dir| index.resolve_file(&format!("{dir}/fips.so")));
    let (path, file) = analysed.iter().find_map(|(path, facts)| match facts {
        Facts::Elf {
            provider: Some(pf), ..
        } if wanted.as_ref().is_none_or(|w| w.as_deref() == Some(path)) => Some((path, pf)),
        _ => None,
    })?;
    let mut identity = file.identity.clone();
    if let Some(id) = identity.as_mut().filter(|id| id.version.is_none()) {
        let status = read_text(tree, index, "/var/lib/dpkg/status").unwrap_or_default();
        id.version = openssl::dpkg_version(&status, "openssl-provider-fips");
    }
    let red_hat = identity.as_ref().is_some_and(|i| i.red_hat);
    let in_config = config.and_then(|(_, c)| c.module_mac().map(str::to_string));
    let mac_text = in_config.or_else(|| standalone_module_mac(tree, index));
    let mac = match mac_text.as_deref().map(openssl::parse_mac) {
        None if red_hat => Mac::Embedded,
        None => Mac::Missing,
        Some(Some(m)) if m == file.mac => Mac::Match,
        Some(_) => Mac::Mismatch,
    };
    let inactive = match config {
        _ if red_hat => None, // Red Hat's build follows the host's FIPS mode.
        None => Some("no openssl.cnf where OpenSSL looks".to_string()),
        Some((_, c)) => c.inactive_because(),
    };
    Some(Provider {
        path: path.clone(),
        identity,
        mac,
        inactive,
    })
}

/// `module-mac` of a `fipsmodule.cnf` anywhere in the image, when `openssl.cnf` has none.
fn standalone_module_mac(tree: &dyn Tree, index: &Index) -> Option<String> {
    (index.files().map(|f| f.0))
        .filter(|p| p.ends_with("/fipsmodule.cnf"))
        .find_map(|p| {
            let mut c = Config::default();
            c.merge(openssl::parse(&read_text(tree, index, p)?));
            c.module_mac().map(str::to_string)
        })
}

/// The image's environment variables that override FIPS at run time.
#[derive(Debug, Default)]
struct RuntimeEnv {
    godebug: Option<String>,
    gofips: Option<String>,
    openssl_conf: Option<String>,
    openssl_modules: Option<String>,
}

impl RuntimeEnv {
    fn parse(env: &[String]) -> Self {
        let mut out = Self::default();
        for kv in env {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let slot = match k {
                "GODEBUG" => &mut out.godebug,
                "GOFIPS" => &mut out.gofips,
                "OPENSSL_CONF" => &mut out.openssl_conf,
                "OPENSSL_MODULES" => &mut out.openssl_modules,
                _ => continue,
            };
            *slot = Some(v.to_string());
        }
        out
    }
}

/// R1: one row per override present.
fn env_findings(
    env: &RuntimeEnv,
    files: &[Finding],
    ctx: &Context<'_>,
    config_found: bool,
) -> Vec<Finding> {
    let relies = |rules: &[Rule]| {
        files
            .iter()
            .any(|f| rules.contains(&f.rule) && f.verdict != Verdict::Fail)
    };
    let row = |name: &str, verdict, error, reason: String| Finding {
        path: format!("env:{name}"),
        kind: FileKind::Env,
        arch: None,
        go_version: None,
        link: None,
        crypto: "-".into(),
        rule: Rule::R1,
        verdict,
        error,
        reason,
        module: None,
        exception: None,
    };
    let fail_if = |yes: bool| if yes { Verdict::Fail } else { Verdict::Warn };
    let mut out = Vec::new();
    if let Some(v) = &env.godebug {
        let last = v
            .split(',')
            .rev()
            .find_map(|kv| kv.trim().strip_prefix("fips140="));
        if last == Some("off") {
            let verdict = fail_if(relies(&[Rule::G2, Rule::G3, Rule::G4]));
            out.push(row(
                "GODEBUG",
                verdict,
                Some(ErrorName::RuntimeFIPSOff),
                format!("GODEBUG={v} turns Go's FIPS mode off"),
            ));
        }
    }
    if env.gofips.as_deref() == Some("0") {
        let verdict = fail_if(relies(&[Rule::G8, Rule::G9]));
        out.push(row(
            "GOFIPS",
            verdict,
            Some(ErrorName::RuntimeGoFIPSOff),
            "GOFIPS=0 turns golang-fips/OpenSSL's FIPS mode off".into(),
        ));
    }
    let openssl_users = files
        .iter()
        .any(|f| f.crypto.starts_with("openssl") && f.kind != FileKind::FipsProvider);
    if let Some(p) = &env.openssl_conf {
        let inactive = ctx.provider.as_ref().and_then(|p| p.inactive.clone());
        let (verdict, error, reason) = match (config_found, inactive) {
            (false, _) => (
                Verdict::Warn,
                Some(ErrorName::OpenSSLConfOverride),
                format!("OPENSSL_CONF={p} is not in the image (mounted at run time?)"),
            ),
            (true, Some(why)) => (
                Verdict::Warn,
                Some(ErrorName::OpenSSLConfOverride),
                format!("OPENSSL_CONF={p}: {why}"),
            ),
            (true, None) => (
                Verdict::NotApplicable,
                None,
                format!("OPENSSL_CONF={p} is the configuration judged"),
            ),
        };
        out.push(row("OPENSSL_CONF", verdict, error, reason));
    }
    if let Some(dir) = &env.openssl_modules {
        let (verdict, error, reason) = match &ctx.provider {
            Some(_) => (
                Verdict::NotApplicable,
                None,
                format!("OPENSSL_MODULES={dir} holds the provider judged"),
            ),
            None => (
                fail_if(openssl_users),
                Some(ErrorName::OpenSSLModulesOverride),
                format!("OPENSSL_MODULES={dir} has no fips.so"),
            ),
        };
        out.push(row("OPENSSL_MODULES", verdict, error, reason));
    }
    out
}

/// The image's verdict: `none` on an accepted-nowhere FAIL, `unknown` on an open WARN or
/// UNKNOWN, `partial` when exceptions accepted something, else `full`.
fn report(mut findings: Vec<Finding>, input: &ScanInput<'_>, files: usize) -> Report {
    findings.sort_by(|a, b| a.path.cmp(&b.path));
    let mut counts = Counts::default();
    for f in &findings {
        *match f.verdict {
            Verdict::Pass => &mut counts.pass,
            Verdict::Warn => &mut counts.warn,
            Verdict::Fail => &mut counts.fail,
            Verdict::NotApplicable => &mut counts.not_applicable,
            Verdict::Unknown => &mut counts.unknown,
        } += 1;
        counts.excepted += usize::from(f.exception.is_some());
    }
    let open = |v: &[Verdict]| {
        findings
            .iter()
            .any(|f| f.exception.is_none() && v.contains(&f.verdict))
    };
    let status = if open(&[Verdict::Fail]) {
        Status::None
    } else if open(&[Verdict::Warn, Verdict::Unknown]) {
        Status::Unknown
    } else if counts.excepted > 0 {
        Status::Partial
    } else {
        Status::Full
    };
    let mut modules: Vec<CryptoModule> = Vec::new();
    for m in findings
        .iter()
        .filter(|f| f.verdict == Verdict::Pass)
        .filter_map(|f| f.module.as_ref())
    {
        if !modules
            .iter()
            .any(|k| k.name == m.name && k.certificate == m.certificate)
        {
            modules.push(m.clone());
        }
    }
    Report {
        image: None,
        date: Some(input.today),
        scanned_at: None,
        status,
        profile: input.profile,
        modules,
        counts,
        files_scanned: files,
        findings,
    }
}
