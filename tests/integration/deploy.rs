//! The deployment in `deploy/`: the base and every overlay rendered with `kubectl kustomize`,
//! then checked against what the server accepts (its real flag parser, its admin routes, its
//! configuration and catalogue loaders) and what a fail-closed webhook needs to be safe.
//!
//! The rendering tests need kubectl (1.27 or newer, for kustomize v5) and are ignored by plain
//! `cargo test`; `tests/run.sh` runs them (`cargo test --test integration deploy -- --include-ignored`).
//! The Dockerfile and ignore-file checks read files only and run everywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use clap::Parser as _;
use fipsgate::cli::serve::ServeArgs;
use fipsgate::cli::{Cli, Command as Sub};
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_fipsgate");
const NAMESPACE: &str = "fipsgate-system";
/// A user overlay over the cert-manager overlay, installing into another namespace.
const ELSEWHERE: &str = "security (cert-manager)";
const ELSEWHERE_NAMESPACE: &str = "security";
const SELECTOR_LABEL: &str = "kubernetes.io/metadata.name";
const OVERLAYS: [&str; 5] = [
    "audit-only",
    "cert-manager",
    "digest-pinning",
    "locked-down",
    "self-signed",
];
/// What the operator writes into the locked-down overlay's apiserver.env.
const API_SERVER_CIDR: &str = "10.0.0.10/32";

/// Everything rendered once for all tests: `base` and each directory of `deploy/overlays/`.
struct Rendered {
    sets: BTreeMap<String, Vec<Value>>,
    /// What `fipsgate certs` wrote for the self-signed overlay, and the caBundle it printed.
    ca_crt: Vec<u8>,
    tls_crt: Vec<u8>,
    printed_ca_bundle: String,
    /// The API server's client certificate and key (`fipsgate certs --client-name`), PEM.
    client: String,
}

fn rendered() -> &'static Rendered {
    static R: OnceLock<Rendered> = OnceLock::new();
    R.get_or_init(render_all)
}

/// Copies `deploy/` to a scratch directory (never writing into the working tree), generates the
/// self-signed overlay's certificates there with the real binary, and renders everything.
fn render_all() -> Rendered {
    let tmp = tempfile::tempdir().unwrap();
    let deploy = tmp.path().join("deploy");
    let own_certs = Path::new(ROOT).join("deploy/overlays/self-signed/certs");
    copy_tree(&Path::new(ROOT).join("deploy"), &deploy, &own_certs);

    let certs = deploy.join("overlays/self-signed/certs");
    let out = run(Command::new(BIN)
        .args(["certs", "--client-name", "kube-apiserver", "--out"])
        .arg(&certs));
    assert!(
        out.status.success(),
        "fipsgate certs: {}",
        text(&out.stderr)
    );
    let printed_ca_bundle = text(&out.stdout).trim().to_string();
    // audit-only brings its own certificates; the same ones, so it differs from self-signed
    // only where it means to.
    copy_tree(
        &certs,
        &deploy.join("overlays/audit-only/certs"),
        Path::new(""),
    );
    // A user's overlay that installs elsewhere.
    let elsewhere = deploy.join("user-security");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        elsewhere.join("kustomization.yaml"),
        format!("namespace: {ELSEWHERE_NAMESPACE}\nresources: [../overlays/cert-manager]\n"),
    )
    .unwrap();
    std::fs::write(
        deploy.join("overlays/locked-down/apiserver.env"),
        format!("API_SERVER_CIDR={API_SERVER_CIDR}\n"),
    )
    .unwrap();

    let mut sets = BTreeMap::new();
    sets.insert("base".to_string(), kustomize(&deploy.join("base")));
    sets.insert(ELSEWHERE.to_string(), kustomize(&elsewhere));
    for entry in std::fs::read_dir(deploy.join("overlays")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            sets.insert(name, kustomize(&entry.path()));
        }
    }
    Rendered {
        sets,
        ca_crt: std::fs::read(certs.join("ca.crt")).unwrap(),
        tls_crt: std::fs::read(certs.join("tls.crt")).unwrap(),
        printed_ca_bundle,
        client: ["client.crt", "client.key"]
            .map(|f| std::fs::read_to_string(certs.join(f)).unwrap())
            .concat(),
    }
}

fn copy_tree(from: &Path, to: &Path, skip: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src == skip {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst, skip);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (kubectl: run tests/run.sh)"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `kubectl kustomize DIR`, parsed into one JSON value per document.
fn kustomize(dir: &Path) -> Vec<Value> {
    let out = run(Command::new("kubectl").arg("kustomize").arg(dir));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed (kubectl 1.27+ with kustomize v5 is needed): {}",
        dir.display(),
        text(&out.stderr)
    );
    let yaml = text(&out.stdout);
    serde_saphyr::from_multiple::<Value>(&yaml)
        .unwrap_or_else(|e| panic!("kubectl kustomize {}: {e}\n{yaml}", dir.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

fn sets() -> impl Iterator<Item = (&'static str, &'static [Value])> {
    rendered()
        .sets
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
}

/// The namespace the rendering `name` installs into.
fn namespace_of(name: &str) -> &'static str {
    if name == ELSEWHERE {
        ELSEWHERE_NAMESPACE
    } else {
        NAMESPACE
    }
}

fn set(name: &str) -> &'static [Value] {
    rendered()
        .sets
        .get(name)
        .unwrap_or_else(|| panic!("no rendering named {name}"))
}

fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    match of_kind(objs, kind).as_slice() {
        [o] => o,
        other => panic!("expected one {kind}, found {}", other.len()),
    }
}

fn named<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(str_of)
        .collect()
}

fn pod_spec(objs: &[Value]) -> &Value {
    &named(objs, "Deployment", "fipsgate")["spec"]["template"]["spec"]
}

fn container(objs: &[Value]) -> &Value {
    let containers = pod_spec(objs)["containers"].as_array().unwrap();
    containers
        .iter()
        .find(|c| c["name"] == "fipsgate")
        .expect("a container named fipsgate")
}

/// The container's arguments parsed by the server's own command line.
fn serve_args(objs: &[Value]) -> ServeArgs {
    let c = container(objs);
    assert!(
        c.get("command").is_none(),
        "the image's ENTRYPOINT (/fipsgate) must be kept"
    );
    let args = strings(&c["args"]);
    let cli = Cli::try_parse_from(std::iter::once("fipsgate").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("fipsgate rejects the Deployment's args {args:?}: {e}"));
    match cli.command {
        Sub::Serve(a) => a,
        other => panic!("the Deployment runs {other:?}, not serve"),
    }
}

/// A container port by number or by name.
fn container_port(objs: &[Value], port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = str_of(port);
    container(objs)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
        .as_u64()
        .unwrap()
}

/// The volume mounted at the deepest mount point holding `file`, and the path inside it.
fn volume_for<'a>(objs: &'a [Value], file: &Path) -> (&'a Value, &'a Value, PathBuf) {
    let c = container(objs);
    let (mount, rest) = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let rest = file.strip_prefix(str_of(&m["mountPath"])).ok()?;
            Some((m, rest.to_path_buf()))
        })
        .min_by_key(|(_, rest)| rest.components().count())
        .unwrap_or_else(|| panic!("{} is on no volume", file.display()));
    let volume = pod_spec(objs)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
    (mount, volume, rest)
}

/// The ConfigMap the Deployment mounts for its configuration (its name carries a hash).
fn config_map(objs: &[Value]) -> &Value {
    let args = serve_args(objs);
    let (_, volume, _) = volume_for(objs, args.config.as_deref().expect("--config"));
    named(objs, "ConfigMap", str_of(&volume["configMap"]["name"]))
}

fn config(objs: &[Value]) -> fipsgate::config::Config {
    let text = str_of(&config_map(objs)["data"]["config.yaml"]);
    fipsgate::config::Config::parse(text, "config.yaml").unwrap()
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn every_overlay_renders_the_whole_deployment() {
    let names: Vec<&str> = sets().map(|(n, _)| n).collect();
    for overlay in OVERLAYS {
        assert!(names.contains(&overlay), "overlay {overlay} is missing");
    }
    for (name, objs) in sets() {
        let own = namespace_of(name);
        for (kind, obj) in [
            ("Namespace", own),
            ("ServiceAccount", "fipsgate"),
            ("ClusterRole", "fipsgate"),
            ("ClusterRoleBinding", "fipsgate"),
            ("Deployment", "fipsgate"),
            ("PodDisruptionBudget", "fipsgate"),
            ("Service", "fipsgate"),
            ("ValidatingWebhookConfiguration", "fipsgate"),
        ] {
            named(objs, kind, obj);
        }
        config_map(objs);
        let ns = named(objs, "Namespace", own);
        assert_eq!(
            ns["metadata"]["labels"][SELECTOR_LABEL], own,
            "{name}: the namespace must carry the label its exclusion relies on"
        );
        let mut seen = std::collections::HashSet::new();
        for o in objs {
            let key = (o["kind"].clone(), o["metadata"]["name"].clone());
            assert!(
                seen.insert(key),
                "{name}: {} {} twice",
                o["kind"],
                o["metadata"]["name"]
            );
            let cluster_scoped = [
                "Namespace",
                "ClusterRole",
                "ClusterRoleBinding",
                "ValidatingWebhookConfiguration",
                "MutatingWebhookConfiguration",
            ];
            if !cluster_scoped.contains(&str_of(&o["kind"])) {
                assert_eq!(
                    o["metadata"]["namespace"], own,
                    "{name}: {} {}",
                    o["kind"], o["metadata"]["name"]
                );
            }
        }
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn webhook_fails_closed_for_pods_and_never_matches_its_own_namespace() {
    for (name, objs) in sets() {
        let vwc = one(objs, "ValidatingWebhookConfiguration");
        let hooks = vwc["webhooks"].as_array().unwrap();
        assert_eq!(
            hooks.iter().map(|h| str_of(&h["name"])).collect::<Vec<_>>(),
            [
                "pods.fipsgate.io",
                "pods-default.fipsgate.io",
                "workloads.fipsgate.io",
                "namespaces.fipsgate.io"
            ],
            "{name}: registered webhooks"
        );
        // Pods fail closed only where enforcement is opted into by label; elsewhere (and for
        // workloads and namespace relabels, which only get warnings) fipsgate being down
        // blocks nothing.
        let enforced = json!({"key": "fipsgate.io/enforce", "operator": "In", "values": ["strict", "baseline"]});
        let not_enforced = json!({"key": "fipsgate.io/enforce", "operator": "NotIn", "values": ["strict", "baseline"]});
        let by_name = &hooks[0]["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(
            hooks[0]["namespaceSelector"]["matchExpressions"][1], enforced,
            "{name}"
        );
        assert_eq!(
            hooks[1]["namespaceSelector"]["matchExpressions"],
            json!([by_name, not_enforced]),
            "{name}"
        );
        assert_eq!(hooks[1]["rules"], hooks[0]["rules"], "{name}");
        for h in &hooks[1..] {
            assert_eq!(h["failurePolicy"], "Ignore", "{name}: {}", h["name"]);
            assert_eq!(h["sideEffects"], "None", "{name}");
            assert_eq!(h["timeoutSeconds"], 5, "{name}");
            assert_eq!(h["clientConfig"], hooks[0]["clientConfig"], "{name}");
        }
        for h in &hooks[2..] {
            assert_eq!(
                h["namespaceSelector"]["matchExpressions"],
                json!([by_name]),
                "{name}"
            );
        }
        let h = &hooks[0];
        // In dry-run nothing is denied, so nothing fails closed.
        let closed = if name == "audit-only" {
            "Ignore"
        } else {
            "Fail"
        };
        assert_eq!(h["failurePolicy"], closed, "{name}");
        assert_eq!(h["timeoutSeconds"], 5, "{name}");
        assert_eq!(h["sideEffects"], "None", "{name}");
        assert_eq!(h["matchPolicy"], "Equivalent", "{name}");
        assert_eq!(
            strings(&h["admissionReviewVersions"]),
            ["v1", "v1beta1"],
            "{name}"
        );
        assert_eq!(
            h["rules"],
            json!([{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["pods", "pods/ephemeralcontainers"],
                "scope": "Namespaced",
            }]),
            "{name}"
        );

        // Excluded by name: the namespace fipsgate runs in, and kube-system.
        let own = str_of(&named(objs, "Deployment", "fipsgate")["metadata"]["namespace"]);
        let selector = &h["namespaceSelector"];
        assert!(selector.get("matchLabels").is_none(), "{name}: {selector}");
        let excluded: Vec<&str> = selector["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["key"] == SELECTOR_LABEL && e["operator"] == "NotIn")
            .flat_map(|e| strings(&e["values"]))
            .collect();
        for ns in [own, "kube-system"] {
            assert!(
                excluded.contains(&ns),
                "{name}: {ns} is not excluded: {selector}"
            );
        }

        // The API server reaches the server's HTTPS listener through the Service.
        let svc_ref = &h["clientConfig"]["service"];
        assert_eq!(svc_ref["name"], "fipsgate", "{name}");
        assert_eq!(svc_ref["namespace"], own, "{name}");
        assert_eq!(svc_ref["path"], "/validate", "{name}");
        let port = svc_ref["port"].as_u64().unwrap_or(443);
        let svc = named(objs, "Service", "fipsgate");
        let svc_port = svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .unwrap_or_else(|| panic!("{name}: the Service has no port {port}"));
        assert_eq!(
            container_port(objs, &svc_port["targetPort"]),
            u64::from(serve_args(objs).listen.port()),
            "{name}: the Service does not reach --listen"
        );
        let pod_labels =
            &named(objs, "Deployment", "fipsgate")["spec"]["template"]["metadata"]["labels"];
        for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
            assert_eq!(
                &pod_labels[k], v,
                "{name}: the Service selects no fipsgate pod"
            );
        }
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn deployment_is_hardened_highly_available_and_matches_the_server_flags() {
    for (name, objs) in sets() {
        let deployment = named(objs, "Deployment", "fipsgate");
        let pod = pod_spec(objs);
        let c = container(objs);
        let args = serve_args(objs);

        assert!(
            deployment["spec"]["replicas"].as_u64().unwrap() >= 2,
            "{name}"
        );
        let spread = &pod["topologySpreadConstraints"][0];
        assert_eq!(spread["topologyKey"], "kubernetes.io/hostname", "{name}");
        assert_eq!(spread["whenUnsatisfiable"], "ScheduleAnyway", "{name}");
        let anti = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(
            anti["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname",
            "{name}"
        );
        assert_eq!(
            pod["priorityClassName"], "system-cluster-critical",
            "{name}"
        );
        assert_eq!(pod["automountServiceAccountToken"], true, "{name}");

        // The container's setting wins over the pod's.
        let effective = |key: &str| match &c["securityContext"][key] {
            Value::Null => pod["securityContext"][key].clone(),
            v => v.clone(),
        };
        assert_eq!(effective("runAsNonRoot"), true, "{name}");
        assert_eq!(effective("runAsUser"), 65532, "{name}");
        assert_eq!(
            effective("seccompProfile"),
            json!({"type": "RuntimeDefault"}),
            "{name}"
        );
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{name}"
        );
        assert_eq!(
            c["securityContext"]["allowPrivilegeEscalation"], false,
            "{name}"
        );
        assert_eq!(
            c["securityContext"]["capabilities"],
            json!({"drop": ["ALL"]}),
            "{name}"
        );
        assert!(c["securityContext"].get("privileged").is_none(), "{name}");
        assert!(pod.get("hostNetwork").is_none(), "{name}");
        assert!(pod.get("initContainers").is_none(), "{name}");
        for key in ["requests.cpu", "requests.memory", "limits.memory"] {
            let (a, b) = key.split_once('.').unwrap();
            assert!(
                c["resources"][a][b].is_string(),
                "{name}: resources.{key} missing"
            );
        }

        // Ports and probes as the server serves them.
        assert_eq!(
            container_port(objs, &json!("https")),
            u64::from(args.listen.port()),
            "{name}"
        );
        assert_eq!(
            container_port(objs, &json!("admin")),
            u64::from(args.admin_listen.port()),
            "{name}"
        );
        assert_eq!(args.listen.port(), 8443, "{name}");
        assert_eq!(args.admin_listen.port(), 8080, "{name}");
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], path, "{name}: {probe}");
            assert_eq!(
                container_port(objs, &get["port"]),
                u64::from(args.admin_listen.port()),
                "{name}: {probe} is not on the admin port"
            );
            assert!(
                get.get("scheme").is_none_or(|s| s == "HTTP"),
                "{name}: {probe}"
            );
        }

        // Kubernetes waits longer than the server's own shutdown before it kills it.
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        let shutdown = args.shutdown_delay + args.drain_timeout;
        assert!(
            grace as f64 > shutdown.as_secs_f64(),
            "{name}: terminationGracePeriodSeconds {grace} <= {shutdown:?}"
        );

        // TLS files from the Secret fipsgate-tls, read-only.
        for (flag, file) in [("--tls-cert", &args.tls_cert), ("--tls-key", &args.tls_key)] {
            let file = file
                .as_deref()
                .unwrap_or_else(|| panic!("{name}: no {flag}"));
            let (mount, volume, rest) = volume_for(objs, file);
            assert_eq!(
                volume["secret"]["secretName"], "fipsgate-tls",
                "{name}: {flag}"
            );
            assert_eq!(mount["readOnly"], true, "{name}: {flag}");
            assert!(
                ["tls.crt", "tls.key"].contains(&rest.to_str().unwrap()),
                "{name}: {flag}"
            );
        }
        assert!(!args.dev, "{name}");
        assert_eq!(
            args.log_format,
            fipsgate::telemetry::logging::LogFormat::Json,
            "{name}"
        );

        let sa = str_of(&pod["serviceAccountName"]);
        named(objs, "ServiceAccount", sa);
    }
}

/// The pod's volumes as files under `root`: the ConfigMap's data, the TLS Secret's data when
/// the rendering has it (else a pair from `fipsgate certs`), an emptyDir empty. Returns the mount paths mapped
/// to their scratch directories, deepest first.
fn materialize_volumes(objs: &[Value], root: &Path) -> Vec<(String, PathBuf)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut mounts = Vec::new();
    for (i, m) in container(objs)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let dir = root.join(format!("volume-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let volume = pod_spec(objs)["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap();
        if let Some(cm) = volume["configMap"]["name"].as_str() {
            for (file, content) in named(objs, "ConfigMap", cm)["data"].as_object().unwrap() {
                std::fs::write(dir.join(file), str_of(content)).unwrap();
            }
        } else if let Some(secret) = volume["secret"]["secretName"].as_str() {
            let rendered = objs
                .iter()
                .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == secret);
            match rendered {
                Some(s) => {
                    for (file, content) in s["data"].as_object().unwrap() {
                        let content: String = str_of(content).split_whitespace().collect();
                        std::fs::write(dir.join(file), b64.decode(content).unwrap()).unwrap();
                    }
                }
                None => {
                    let ns =
                        str_of(&named(objs, "Deployment", "fipsgate")["metadata"]["namespace"]);
                    let out = run(Command::new(BIN)
                        .args(["certs", "-n", ns, "--out"])
                        .arg(&dir));
                    assert!(out.status.success(), "{}", text(&out.stderr));
                }
            }
        } else if volume.get("emptyDir").is_none() {
            panic!(
                "volume {} is neither a ConfigMap, a Secret nor an emptyDir",
                m["name"]
            );
        }
        mounts.push((str_of(&m["mountPath"]).to_string(), dir));
    }
    mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    mounts
}

/// `GET path` over plain HTTP/1.1: the status code.
fn http_get(addr: &str, path: &str) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    status
        .parse()
        .unwrap_or_else(|_| panic!("GET {path}: {response:?}"))
}

/// A child process that is killed when the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The container as the kubelet would start it: its args, its ConfigMap and Secret as files
/// (paths moved to a scratch directory), with only the listeners moved to free ports and
/// `--dev` for the missing cluster. The probes must answer, and SIGTERM must end it well
/// within terminationGracePeriodSeconds.
fn serve_like_the_pod(name: &str, objs: &[Value]) {
    use std::io::BufRead as _;
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap();
    let mounts = materialize_volumes(objs, tmp.path());
    // Paths inside the pod moved to the scratch copies, deepest mount first.
    let relocate = |s: &str| {
        let mut s = s.to_string();
        for (mount, dir) in &mounts {
            s = s.replace(&format!("{mount}/"), &format!("{}/", dir.display()));
        }
        s
    };
    // The config names files on the same volumes (the user catalogue).
    for (_, dir) in &mounts {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(&path, relocate(&text)).unwrap();
            }
        }
    }
    let c = container(objs);
    let mut args: Vec<String> = strings(&c["args"]).into_iter().map(relocate).collect();
    // The image is the FIPS build; this test runs whichever build it was compiled with.
    assert!(args.iter().any(|a| a == "--require-fips"), "{name}");
    if !cfg!(feature = "fips") {
        args.retain(|a| a != "--require-fips");
    }
    for flag in ["--listen", "--admin-listen", "--dev"] {
        assert!(
            !args.iter().any(|a| a.starts_with(flag)),
            "{name}: the test sets {flag}"
        );
    }
    let mut server = KillOnDrop(
        Command::new(BIN)
            .args(&args)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--dev",
            ])
            .current_dir(tmp.path())
            .env_clear()
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut server.0;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let (mut dry_run, mut admin, mut listen) = (None, None, None);
    while admin.is_none() {
        let Some(Ok(line)) = lines.next() else {
            panic!("{name}: fipsgate serve exited:\n{}", log.join("\n"));
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        log.push(line);
        if v["message"] == "catalogue and policy loaded" {
            dry_run = v["dry_run"].as_bool();
        }
        if v["message"] == "fipsgate serving" {
            admin = v["admin"].as_str().map(String::from);
            listen = v["listen"].as_str().map(String::from);
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (admin, listen) = (admin.unwrap(), listen.unwrap());
    assert_eq!(
        dry_run,
        Some(name == "audit-only"),
        "{name}: dry-run as the server logged it"
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = str_of(&c[probe]["httpGet"]["path"]);
        assert_eq!(http_get(&admin, path), 200, "{name}: {probe} {path}");
    }

    review_like_the_api_server(name, objs, &mounts, &listen);

    let grace = pod_spec(objs)["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    // The server installs its SIGTERM handler just after logging "fipsgate serving".
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(grace) {
            panic!("{name}: still running {grace}s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{name}: exit {status}");
}

/// What the API server does with the webhook registration: it calls the Service's DNS name on
/// the registered path with `?timeout=`, trusting only `caBundle` (where the rendering has none,
/// cert-manager's or the user's, the CA that signed the mounted pair).
fn review_like_the_api_server(
    name: &str,
    objs: &[Value],
    mounts: &[(String, PathBuf)],
    listen: &str,
) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hook = &one(objs, "ValidatingWebhookConfiguration")["webhooks"][0];
    let svc = &hook["clientConfig"]["service"];
    let host = format!("{}.{}.svc", str_of(&svc["name"]), str_of(&svc["namespace"]));
    let ca = match hook["clientConfig"]["caBundle"].as_str() {
        Some(bundle) => b64
            .decode(bundle.split_whitespace().collect::<String>())
            .unwrap(),
        None => {
            let args = serve_args(objs);
            let cert = args.tls_cert.unwrap();
            let tls_dir = cert.parent().unwrap().to_str().unwrap();
            let (_, dir) = mounts.iter().find(|(m, _)| m == tls_dir).unwrap();
            std::fs::read(dir.join("ca.crt")).unwrap()
        }
    };
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let url = format!(
        "https://{host}:{}{}?timeout={}s",
        addr.port(),
        str_of(&svc["path"]),
        hook["timeoutSeconds"]
    );
    let review = std::fs::read(
        Path::new(ROOT).join("tests/fixtures/admission-reviews/pod-create-dry-run.json"),
    )
    .unwrap();
    let uid = serde_json::from_slice::<Value>(&review).unwrap()["request"]["uid"].clone();

    fipsgate::infra::crypto::install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // With --client-ca, the API server presents the client certificate its kubeconfig holds;
    // without it the handshake fails.
    let client_auth = serve_args(objs).client_ca.is_some();
    let (status, answer) = runtime.block_on(async {
        let client = |identity: bool| {
            let mut b = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
                .resolve(&host, addr)
                .timeout(std::time::Duration::from_secs(10));
            if identity {
                let pem = rendered().client.as_bytes();
                b = b.identity(reqwest::Identity::from_pem(pem).unwrap());
            }
            b.build().unwrap()
        };
        if client_auth {
            let refused = (client(false).post(&url))
                .header("content-type", "application/json")
                .body(review.clone())
                .send()
                .await;
            assert!(
                refused.is_err(),
                "{name}: served without a client certificate"
            );
        }
        let client = client(client_auth);
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(review)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: POST {url} trusting the caBundle: {e:?}"));
        (resp.status(), resp.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 200, "{name}: {answer}");
    assert_eq!(answer["response"]["uid"], uid, "{name}: {answer}");
    // A fresh install denies nothing until namespaces opt in (defaults.enforce: off).
    assert_eq!(answer["response"]["allowed"], true, "{name}: {answer}");
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn the_real_server_starts_from_each_rendered_pod_and_answers_probes_and_reviews() {
    std::thread::scope(|scope| {
        for (name, objs) in sets() {
            scope.spawn(move || serve_like_the_pod(name, objs));
        }
    });
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn disruption_budget_keeps_a_replica_and_lets_drains_proceed() {
    for (name, objs) in sets() {
        let pdb = named(objs, "PodDisruptionBudget", "fipsgate");
        assert_eq!(pdb["apiVersion"], "policy/v1", "{name}");
        assert_eq!(pdb["spec"]["minAvailable"], 1, "{name}");
        let deployment = named(objs, "Deployment", "fipsgate");
        assert!(
            deployment["spec"]["replicas"].as_u64().unwrap() > 1,
            "{name}"
        );
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let selector = pdb["spec"]["selector"]["matchLabels"].as_object().unwrap();
        assert!(!selector.is_empty(), "{name}");
        for (k, v) in selector {
            assert_eq!(&labels[k], v, "{name}: the PDB selects no fipsgate pod");
        }
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn rbac_grants_what_the_configured_features_use_and_nothing_more() {
    for (name, objs) in sets() {
        // Namespace labels always; the rest only for what the config and webhooks turn on.
        let mut expected = vec![json!({
            "apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"],
        })];
        let attestations = config(objs).attestations;
        if attestations.enabled && attestations.pull_secrets {
            expected.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}));
        }
        // Pods are listed only to warn about a namespace relabel, which needs its webhook.
        let hooks = one(objs, "ValidatingWebhookConfiguration")["webhooks"]
            .as_array()
            .unwrap();
        let relabels = hooks.iter().any(|h| {
            h["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| strings(&r["resources"]).contains(&"namespaces"))
        });
        if relabels {
            expected.push(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}));
        }
        let role = one(objs, "ClusterRole");
        assert_eq!(
            role["rules"],
            Value::Array(expected),
            "{name}: ClusterRole rules"
        );
        assert!(role.get("aggregationRule").is_none(), "{name}");
        assert!(of_kind(objs, "Role").is_empty(), "{name}");
        assert!(of_kind(objs, "RoleBinding").is_empty(), "{name}");
        let binding = one(objs, "ClusterRoleBinding");
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role["metadata"]["name"]}),
            "{name}"
        );
        let sa = str_of(&pod_spec(objs)["serviceAccountName"]);
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": sa, "namespace": namespace_of(name)}]),
            "{name}"
        );
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn config_and_catalogue_load_with_the_real_binary() {
    for (name, objs) in sets() {
        let args = serve_args(objs);
        let config_path = args.config.clone().expect("--config");
        let (mount, volume, key) = volume_for(objs, &config_path);
        assert!(volume.get("configMap").is_some(), "{name}");
        assert_eq!(mount["readOnly"], true, "{name}");
        let mount_path = str_of(&mount["mountPath"]);
        let data = config_map(objs)["data"].as_object().unwrap();
        assert!(
            data.contains_key(key.to_str().unwrap()),
            "{name}: {key:?} not in the ConfigMap"
        );

        let config = config(objs);
        for ns in [namespace_of(name), "kube-system"] {
            assert!(
                config.exemptions.namespaces.iter().any(|n| n.0.name == *ns),
                "{name}: {ns}"
            );
        }
        config.rules().expect("exemptions.images");
        assert!(config.catalog.include_default, "{name}");
        assert!(
            !config.catalog.files.is_empty(),
            "{name}: no user catalogue"
        );
        for file in &config.catalog.files {
            let (_, v, key) = volume_for(objs, file);
            assert_eq!(
                v["name"],
                volume["name"],
                "{name}: {} is not in the ConfigMap",
                file.display()
            );
            assert!(
                data.contains_key(key.to_str().unwrap()),
                "{name}: {key:?} not in the ConfigMap"
            );
        }

        // The ConfigMap as the pod sees it, with the mount point moved to a scratch directory.
        let dir = tempfile::tempdir().unwrap();
        let here = format!("{}/", dir.path().display());
        for (file, content) in data {
            let content = str_of(content).replace(&format!("{mount_path}/"), &here);
            std::fs::write(dir.path().join(file), content).unwrap();
        }
        let out = run(Command::new(BIN)
            .args(["catalog", "-o", "json", "--config"])
            .arg(dir.path().join(&key)));
        assert!(
            out.status.success(),
            "{name}: fipsgate catalog: {}",
            text(&out.stderr)
        );
        let effective: Value = serde_json::from_slice(&out.stdout).unwrap();

        // Everything in the user catalogues made it in (so they were read, not skipped).
        for file in &config.catalog.files {
            let (_, _, key) = volume_for(objs, file);
            let user: Value = serde_saphyr::from_str(str_of(&data[key.to_str().unwrap()])).unwrap();
            for c in user["components"].as_array().into_iter().flatten() {
                let found = effective["components"].as_array().unwrap();
                assert!(
                    found.iter().any(|e| e["id"] == c["id"]),
                    "{name}: {}",
                    c["id"]
                );
            }
            for m in user["mirrors"].as_array().into_iter().flatten() {
                assert!(
                    effective["mirrors"].as_array().unwrap().contains(m),
                    "{name}: {m}"
                );
            }
        }
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn audit_only_is_self_signed_in_dry_run_failing_open() {
    for (name, objs) in sets() {
        let dry_run = serve_args(objs).dry_run || config(objs).dry_run;
        assert_eq!(dry_run, name == "audit-only", "{name}");
    }
    // It stands alone (its own Secret and caBundle); nothing else differs from self-signed.
    let mut audit_only = set("audit-only").to_vec();
    for o in &mut audit_only {
        if o["kind"] == "Deployment" {
            let args = o["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array_mut()
                .unwrap();
            args.retain(|a| a != "--dry-run");
        }
        if o["kind"] == "ValidatingWebhookConfiguration" {
            assert_eq!(o["webhooks"][0]["failurePolicy"], "Ignore");
            o["webhooks"][0]["failurePolicy"] = json!("Fail");
        }
    }
    assert_eq!(audit_only, set("self-signed"));
}

/// `namespace: security` in a user overlay moves everything that names the namespace: the
/// webhook's Service reference and self-exclusion, the certificate's names, cert-manager's CA
/// injection, the ServiceAccount binding and the exemption in the config.
#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn another_namespace_keeps_names_injection_and_self_exclusion_consistent() {
    for (name, objs) in sets() {
        let text = serde_json::to_string(objs).unwrap();
        assert!(!text.contains("$("), "{name}: an unresolved var");
    }
    let objs = set(ELSEWHERE);
    let text = serde_json::to_string(objs).unwrap();
    assert!(
        !text.contains(NAMESPACE),
        "{ELSEWHERE}: still names {NAMESPACE}"
    );
    let serving = named(objs, "Certificate", "fipsgate-serving");
    assert_eq!(
        strings(&serving["spec"]["dnsNames"]),
        [
            "fipsgate.security.svc",
            "fipsgate.security.svc.cluster.local"
        ]
    );
    assert_eq!(serving["spec"]["commonName"], "fipsgate.security.svc");
    let vwc = one(objs, "ValidatingWebhookConfiguration");
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "security/fipsgate-serving"
    );
    for h in vwc["webhooks"].as_array().unwrap() {
        assert_eq!(h["clientConfig"]["service"]["namespace"], "security");
        let by_name = &h["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(by_name["key"], SELECTOR_LABEL);
        assert_eq!(strings(&by_name["values"]), ["security", "kube-system"]);
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn locked_down_admits_only_the_api_server() {
    for (name, objs) in sets() {
        let args = serve_args(objs);
        let policies = of_kind(objs, "NetworkPolicy");
        if name != "locked-down" {
            assert!(args.client_ca.is_none() && policies.is_empty(), "{name}");
            continue;
        }
        // The client CA is the ca.crt of the mounted TLS Secret, which issued the client's.
        let ca = args.client_ca.unwrap();
        assert_eq!(ca, Path::new("/etc/fipsgate/tls/ca.crt"));
        assert_eq!(args.client_names, ["kube-apiserver"]);
        let secret = named(objs, "Secret", "fipsgate-tls");
        assert!(secret["data"]["ca.crt"].is_string());
        // The webhook port from the API server's addresses only; the admin port for probes.
        let policy = named(objs, "NetworkPolicy", "fipsgate");
        let spec = &policy["spec"];
        let labels = pod_labels(objs);
        for (k, v) in spec["podSelector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "the policy selects fipsgate's pods");
        }
        assert_eq!(spec["policyTypes"], json!(["Ingress"]));
        let ingress = spec["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 2);
        assert_eq!(
            ingress[0]["from"],
            json!([{"ipBlock": {"cidr": API_SERVER_CIDR}}])
        );
        assert_eq!(container_port(objs, &ingress[0]["ports"][0]["port"]), 8443);
        assert!(ingress[1].get("from").is_none());
        assert_eq!(container_port(objs, &ingress[1]["ports"][0]["port"]), 8080);
        // The replacement's source is never applied.
        assert!(
            (of_kind(objs, "ConfigMap").iter())
                .all(|c| c["metadata"]["name"] != "fipsgate-apiserver")
        );
    }
}

fn pod_labels(objs: &[Value]) -> Value {
    let d = named(objs, "Deployment", "fipsgate");
    d["spec"]["template"]["metadata"]["labels"].clone()
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn cert_manager_overlay_issues_the_serving_certificate_and_injects_its_ca() {
    const INJECT: &str = "cert-manager.io/inject-ca-from";
    for (name, objs) in sets() {
        let vwc = one(objs, "ValidatingWebhookConfiguration");
        let inject = &vwc["metadata"]["annotations"][INJECT];
        if !["cert-manager", "digest-pinning", ELSEWHERE].contains(&name) {
            assert!(inject.is_null(), "{name}");
            continue;
        }
        let own = namespace_of(name);
        assert_eq!(inject, &json!(format!("{own}/fipsgate-serving")));
        let (ns, cert_name) = str_of(inject).split_once('/').unwrap();
        let serving = named(objs, "Certificate", cert_name);
        assert_eq!(serving["metadata"]["namespace"], ns);
        assert_eq!(serving["spec"]["secretName"], "fipsgate-tls");
        let service = format!("fipsgate.{own}.svc");
        assert!(strings(&serving["spec"]["dnsNames"]).contains(&service.as_str()));
        assert!(serving["spec"]["isCA"].as_bool() != Some(true));

        // serving <- CA Issuer <- CA Certificate <- selfSigned Issuer, all in this namespace.
        let issuer_ref = &serving["spec"]["issuerRef"];
        assert_eq!(issuer_ref["kind"], "Issuer");
        let ca_issuer = named(objs, "Issuer", str_of(&issuer_ref["name"]));
        let ca_secret = &ca_issuer["spec"]["ca"]["secretName"];
        let ca = of_kind(objs, "Certificate")
            .into_iter()
            .find(|c| &c["spec"]["secretName"] == ca_secret)
            .expect("a Certificate writing the CA Issuer's secret");
        assert_eq!(ca["spec"]["isCA"], true);
        let root = named(objs, "Issuer", str_of(&ca["spec"]["issuerRef"]["name"]));
        assert!(root["spec"]["selfSigned"].is_object());
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn self_signed_overlay_bundles_the_generated_ca() {
    let r = rendered();
    let objs = set("self-signed");
    let b64 = base64::engine::general_purpose::STANDARD;
    let ca_b64 = b64.encode(&r.ca_crt);
    assert_eq!(
        r.printed_ca_bundle, ca_b64,
        "fipsgate certs prints the caBundle"
    );

    // kustomize wraps long base64 over lines; the API server's decoder skips the newlines.
    let unwrap = |v: &Value| str_of(v).split_whitespace().collect::<String>();
    let vwc = one(objs, "ValidatingWebhookConfiguration");
    let bundle = unwrap(&vwc["webhooks"][0]["clientConfig"]["caBundle"]);
    assert_eq!(bundle, ca_b64);
    for h in vwc["webhooks"].as_array().unwrap() {
        assert_eq!(
            unwrap(&h["clientConfig"]["caBundle"]),
            ca_b64,
            "{}",
            h["name"]
        );
    }
    assert_eq!(b64.decode(&bundle).unwrap(), r.ca_crt);

    let secret = named(objs, "Secret", "fipsgate-tls");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(
        b64.decode(unwrap(&secret["data"]["tls.crt"])).unwrap(),
        r.tls_crt
    );
    let keys: Vec<&String> = secret["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["ca.crt", "tls.crt", "tls.key"],
        "the CA key never leaves certs/"
    );
    // The Deployment mounts this very Secret (no hash suffix to chase on renewal).
    let (_, volume, _) = volume_for(objs, serve_args(objs).tls_cert.as_deref().unwrap());
    assert_eq!(volume["secret"]["secretName"], secret["metadata"]["name"]);

    for (name, objs) in sets() {
        if ![
            "self-signed",
            "audit-only",
            "cert-manager",
            "locked-down",
            ELSEWHERE,
        ]
        .contains(&name)
        {
            let hook = &one(objs, "ValidatingWebhookConfiguration")["webhooks"][0];
            assert!(hook["clientConfig"].get("caBundle").is_none(), "{name}");
        }
    }
}

/// The Dockerfile's instructions, continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("deploy/Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (i, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (i.to_uppercase(), rest.trim().to_string())
        })
        .collect()
}

#[test]
fn dockerfile_builds_locked_and_runs_as_the_deployment_user() {
    let steps = dockerfile();
    let froms: Vec<&str> = steps
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].starts_with("rust:1-bookworm "), "{froms:?}");
    assert_eq!(froms[1], "gcr.io/distroless/cc-debian12:nonroot");
    let last_from = steps.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let (build, runtime) = steps.split_at(last_from);
    assert!(
        build
            .iter()
            .any(|(i, a)| i == "RUN" && a.contains("cargo build --release --locked")),
        "{build:?}"
    );
    let user = runtime
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, a)| a.split(':').next().unwrap().to_string())
        .expect("USER in the runtime stage");
    let entrypoint = runtime.iter().find(|(i, _)| i == "ENTRYPOINT").unwrap();
    assert_eq!(entrypoint.1, r#"["/fipsgate"]"#);
    assert!(
        !runtime.iter().any(|(i, _)| i == "RUN"),
        "the runtime stage has no shell"
    );
    // glibc with a fixed mmap threshold returns freed request bodies (benches/hostile.rs).
    assert!(
        (runtime.iter())
            .any(|(i, a)| i == "ENV" && a == "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072"),
        "{runtime:?}"
    );

    // The Deployment runs as that user and keeps the entrypoint.
    let raw = std::fs::read_to_string(Path::new(ROOT).join("deploy/base/deployment.yaml")).unwrap();
    let d: Value = serde_saphyr::from_str(&raw).unwrap();
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"].to_string(), user);
    let c = &pod["containers"][0];
    assert!(c.get("command").is_none());
    assert_eq!(c["args"][0], "serve");

    let ignore = std::fs::read_to_string(Path::new(ROOT).join(".dockerignore")).unwrap();
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for entry in ["target/", ".git", "certs/dev/", "**/*.key"] {
        assert!(lines.contains(&entry), ".dockerignore lacks {entry}");
    }
}

#[test]
fn keys_and_certificates_stay_out_of_git() {
    let ignore = |dir: &str| {
        std::fs::read_to_string(Path::new(ROOT).join(dir).join(".gitignore"))
            .unwrap()
            .lines()
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    let certs = ignore("certs");
    for entry in ["*.key", "*.crt", "dev/"] {
        assert!(
            certs.contains(&entry.to_string()),
            "certs/.gitignore lacks {entry}"
        );
    }
    assert!(ignore("deploy/overlays/self-signed").contains(&"/certs/".to_string()));

    // Where git is at hand, ask it (a source tarball has no repository: nothing more to check).
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(ROOT)
            .args(args)
            .output()
            .ok()
    };
    let Some(out) = git(&["rev-parse", "--is-inside-work-tree"]) else {
        return;
    };
    if !out.status.success() {
        return;
    }
    for path in [
        "certs/dev/tls.key",
        "certs/tls.key",
        "certs/ca.crt",
        "deploy/overlays/self-signed/certs/ca.key",
        "deploy/overlays/self-signed/certs/tls.crt",
    ] {
        let out = git(&["check-ignore", "-q", "--no-index", path]).unwrap();
        assert!(out.status.success(), "{path} is not git-ignored");
    }
    let out = git(&["check-ignore", "-q", "--no-index", "certs/README.md"]).unwrap();
    assert!(!out.status.success(), "certs/README.md must stay tracked");
    let tracked = git(&["ls-files", "--", "certs", "deploy"]).unwrap();
    for f in text(&tracked.stdout).lines() {
        assert!(!f.ends_with(".key"), "{f} is tracked");
    }
}

#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn digest_pinning_adds_a_mutating_webhook_that_never_blocks() {
    for (name, objs) in sets() {
        let mutating = of_kind(objs, "MutatingWebhookConfiguration");
        if name != "digest-pinning" {
            assert!(mutating.is_empty(), "{name}");
            continue;
        }
        let [mwc] = mutating[..] else {
            panic!("{name}: one MutatingWebhookConfiguration")
        };
        let vwc = one(objs, "ValidatingWebhookConfiguration");
        assert_eq!(
            mwc["metadata"]["annotations"], vwc["metadata"]["annotations"],
            "{name}: the same CA"
        );
        let (pin, pods) = (&mwc["webhooks"][0], &vwc["webhooks"][0]);
        assert_eq!(pin["failurePolicy"], "Ignore", "pinning never blocks a pod");
        assert_eq!(pin["sideEffects"], "None");
        // Every namespace but fipsgate's own and kube-system, labelled or not.
        let by_name = &pods["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(
            pin["namespaceSelector"],
            json!({"matchExpressions": [by_name]})
        );
        let mut service = pods["clientConfig"]["service"].clone();
        service["path"] = "/mutate".into();
        assert_eq!(pin["clientConfig"]["service"], service);
        assert_eq!(strings(&pin["rules"][0]["resources"]), ["pods"]);
        assert_eq!(strings(&pin["rules"][0]["operations"]), ["CREATE"]);
    }
}

/// The webhooks ask for exactly the kinds fipsgate reads (`domain::workload::KINDS`): pods
/// (and their ephemeral containers) to the failing-closed webhook, every workload template to
/// the warning one.
#[test]
#[ignore = "needs kubectl for kustomize: run tests/run.sh"]
fn webhook_rules_cover_the_supported_kinds() {
    use fipsgate::domain::workload::KINDS;
    let resources = |hook: &Value| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for rule in hook["rules"].as_array().unwrap() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    out.push((group.to_string(), resource.to_string()));
                }
            }
        }
        out.sort();
        out
    };
    let mut pods = vec![("".to_string(), "pods".to_string())];
    pods.push(("".into(), "pods/ephemeralcontainers".into()));
    let mut workloads: Vec<(String, String)> = KINDS
        .iter()
        .filter(|k| !k.enforceable())
        .map(|k| (k.group.to_string(), k.plural.to_string()))
        .collect();
    workloads.sort();
    for (name, objs) in sets() {
        let hooks = one(objs, "ValidatingWebhookConfiguration")["webhooks"].clone();
        assert_eq!(resources(&hooks[0]), pods, "{name}: pods.fipsgate.io");
        assert_eq!(
            resources(&hooks[1]),
            pods,
            "{name}: pods-default.fipsgate.io"
        );
        assert_eq!(
            resources(&hooks[2]),
            workloads,
            "{name}: workloads.fipsgate.io"
        );
    }
}
