//! Hostile callers against `fipsgate serve` (the bench build, its own process, so the RSS is
//! the server's alone): the attacks an adversarial review used to knock the webhook over,
//! replayed all at once for `HOSTILE_SECS` seconds (default 30), each from its own loopback
//! address as from its own pod, while the API server's address (127.0.0.1) sends one ordinary
//! review every 100 ms and asks `/healthz` every 100 ms:
//!
//! 1. idle: 4096 idle connections (TLS, then the HTTP/2 preface or nothing), reopened as they
//!    are closed (127.0.0.2);
//! 2. streams: 32 streams of 8 MiB bodies on one HTTP/2 connection, round after round
//!    (127.0.0.3);
//! 3. malformed: 8 MiB bodies that are not AdmissionReviews, two at a time (127.0.0.4);
//! 4. updates: two crafted 8 MiB pod UPDATEs at a time, 1024 containers changed, each naming
//!    an image of the attacker's registry (127.0.0.5);
//! 5. registry: pods naming images of a registry that answers every manifest with 300 MB,
//!    four at a time (127.0.0.6).
//!
//! `HOSTILE_SERVER=PATH` runs another build of the server instead (an earlier release, say).
//! The server runs with the image's environment (deploy/Dockerfile's `ENV`; `HOSTILE_BARE=1`
//! without it) and its default limits. Targets: every ordinary review answered correctly, p99 under 1 s, `/healthz` always within
//! 1 s, peak RSS under 128 MiB, no panic. Prints what each attack got and exits 1 on a missed
//! target. Needs Debian's `docker-registry` (the ordinary image and its attestation live in a
//! real registry): `cargo bench --bench hostile`.

#[path = "../tests/integration/common/registry.rs"]
mod registry;
#[path = "common/review.rs"]
mod review;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use registry::{SigningKey, TestRegistry, fips_predicate, statement};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MIB: usize = 1 << 20;
/// Just under the default `--max-body-bytes` (8 MiB).
const BIG: usize = 8 * MIB - 4096;
const IDLE: usize = 4096;
const STREAMS: usize = 32;
const CONTAINERS: usize = 1024;
/// What the attacker's registry answers every manifest with.
const HUGE: u64 = 300 * 1000 * 1000;
const RSS_TARGET_MIB: f64 = 128.0;

/// What each attack got, by outcome.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        *self.0.lock().unwrap().entry(what.into()).or_default() += 1;
    }
}

/// What every attack shares.
struct Ctx {
    port: u16,
    admin: u16,
    ca: Vec<u8>,
    evil: String,
    stop: AtomicBool,
    tally: Tally,
}

impl Ctx {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/validate?timeout=10s", self.port)
    }

    fn client(&self, source: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&self.ca).unwrap()])
            .local_address(IpAddr::from(source))
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    fn tls(&self, alpn: &[u8]) -> tokio_rustls::TlsConnector {
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&self.ca) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut cfg = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    /// A TLS connection from `source`.
    async fn connect(
        &self,
        source: [u8; 4],
        alpn: &[u8],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((IpAddr::from(source), 0).into())?;
        let tcp = socket.connect(([127, 0, 0, 1], self.port).into()).await?;
        let name = "localhost".try_into().unwrap();
        self.tls(alpn).connect(name, tcp).await
    }
}

/// The server process, its working directory and its ports.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    admin: u16,
}

/// The environment the image sets (`ENV` lines of deploy/Dockerfile): the server runs as it
/// runs in the cluster. `HOSTILE_BARE=1` leaves it out.
fn image_env() -> Vec<(String, String)> {
    if std::env::var_os("HOSTILE_BARE").is_some_and(|v| !v.is_empty()) {
        return Vec::new();
    }
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Dockerfile")).unwrap();
    (dockerfile.lines())
        .filter_map(|l| l.strip_prefix("ENV "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start_server(config: &str, key: &SigningKey) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pub"), key.public_pem()).unwrap();
    std::fs::write(dir.path().join("fipsgate.yaml"), config).unwrap();
    let (port, admin) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("fipsgate.log")).unwrap();
    // HOSTILE_SERVER=PATH: another build (an earlier release, to compare).
    let bin = (std::env::var("HOSTILE_SERVER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or(env!("CARGO_BIN_EXE_fipsgate").into());
    let child = Command::new(bin)
        .current_dir(dir.path())
        .args(["serve", "--dev", "--config", "fipsgate.yaml"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .env("RUST_LOG", "warn")
        .envs(image_env())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "fipsgate did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        dir,
        port,
        admin,
    }
}

/// The attacker's registry: `/v2/` answers, every other GET streams 300 MB without a length.
async fn evil_registry(sent: Arc<AtomicU64>) -> String {
    static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let sent = sent.clone();
        async move {
            if uri.path() == "/v2/" {
                return axum::response::Response::new(Body::from("{}"));
            }
            let stream = futures::stream::unfold(0u64, move |n| {
                let sent = sent.clone();
                async move {
                    if n >= HUGE {
                        return None;
                    }
                    sent.fetch_add(CHUNK.len() as u64, Ordering::Relaxed);
                    let chunk = Bytes::from_static(&CHUNK);
                    Some((Ok::<_, Infallible>(chunk), n + CHUNK.len() as u64))
                }
            });
            axum::response::Response::new(Body::from_stream(stream))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    host
}

/// A pod-create review (the captured one) running these images, under `uid`.
fn pod_review(uid: &str, images: &[String]) -> serde_json::Value {
    let mut review = review::captured();
    let containers: Vec<_> = (images.iter().enumerate())
        .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
        .collect();
    review["request"]["uid"] = uid.into();
    review["request"]["object"]["spec"]["initContainers"] = serde_json::json!([]);
    review["request"]["object"]["spec"]["containers"] = containers.into();
    review
}

/// Posts `body`; the status (with the verdict of a review answered), or the error's kind.
async fn post(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> String {
    match (client.post(url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            match v["response"]["allowed"].as_bool() {
                Some(true) => "200 allowed".into(),
                Some(false) => "200 denied".into(),
                None => "200 without a verdict".into(),
            }
        }
        Ok(r) => r.status().as_u16().to_string(),
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(_) => "connection error".into(),
    }
}

/// 1. Idle connections from one address, kept at [`IDLE`] attempts open, reopened at most
///    500 a second.
async fn idle(ctx: Arc<Ctx>) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut n = 0u64;
    while ctx.running() {
        if open.load(Ordering::Relaxed) >= IDLE {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        n += 1;
        open.fetch_add(1, Ordering::Relaxed);
        let (ctx, open) = (ctx.clone(), open.clone());
        tokio::spawn(async move {
            let alpn: &[u8] = if n.is_multiple_of(2) {
                b"h2"
            } else {
                b"http/1.1"
            };
            match ctx.connect([127, 0, 0, 2], alpn).await {
                Ok(mut tls) => {
                    if alpn == b"h2" {
                        let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
                    }
                    let held = Instant::now();
                    let mut buf = [0u8; 1024];
                    while ctx.running() && matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                    if ctx.running() {
                        let s = held.elapsed().as_secs();
                        ctx.tally
                            .add(format!("idle: held, closed by the server after {s} s"));
                    } else {
                        ctx.tally.add("idle: still held at the end");
                    }
                }
                Err(_) => ctx.tally.add("idle: refused at once"),
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// 2. Rounds of [`STREAMS`] streams of [`BIG`] bytes on one HTTP/2 connection.
async fn streams(ctx: Arc<Ctx>) {
    let body = Bytes::from(vec![b' '; BIG]);
    while ctx.running() {
        let Ok(tls) = ctx.connect([127, 0, 0, 3], b"h2").await else {
            ctx.tally.add("streams: connection refused");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok((client, conn)) = h2::client::handshake(tls).await else {
            continue;
        };
        let driver = tokio::spawn(conn);
        while ctx.running() && !driver.is_finished() {
            let round = (0..STREAMS).map(|_| one_stream(client.clone(), body.clone(), &ctx));
            for outcome in futures::future::join_all(round).await {
                ctx.tally.add(format!("streams: {outcome}"));
            }
        }
        driver.abort();
    }
}

async fn one_stream(client: h2::client::SendRequest<Bytes>, body: Bytes, ctx: &Ctx) -> String {
    let req = http::Request::post(ctx.url())
        .header("content-type", "application/json")
        .header("content-length", BIG)
        .body(())
        .unwrap();
    let Ok(mut client) = client.ready().await else {
        return "connection closed".into();
    };
    let Ok((response, mut send)) = client.send_request(req, false) else {
        return "refused stream".into();
    };
    let _ = send.send_data(body, true);
    match tokio::time::timeout(Duration::from_secs(20), response).await {
        Ok(Ok(r)) => r.status().as_u16().to_string(),
        Ok(Err(e)) => format!(
            "reset ({})",
            e.reason().map_or("-".into(), |r| r.to_string())
        ),
        Err(_) => "no answer in 20 s".into(),
    }
}

/// 3. Bodies that are not AdmissionReviews, each [`BIG`] bytes.
async fn malformed(ctx: Arc<Ctx>) {
    let mut nested = vec![b'['; BIG];
    nested[0] = b'{';
    let mut string =
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""#
            .to_vec();
    string.resize(BIG, b'a');
    let kinds = [
        ("nested", Bytes::from(nested)),
        ("unterminated string", Bytes::from(string)),
        (
            "binary",
            Bytes::from((0..BIG).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()),
        ),
    ];
    let client = ctx.client([127, 0, 0, 4]);
    let lanes = (0..2).map(|lane| {
        let (ctx, client, kinds) = (ctx.clone(), client.clone(), kinds.clone());
        async move {
            let mut i = lane;
            while ctx.running() {
                let (kind, body) = &kinds[i % kinds.len()];
                let status = post(&client, &ctx.url(), body.clone()).await;
                ctx.tally.add(format!("malformed ({kind}): {status}"));
                i += 1;
            }
        }
    });
    futures::future::join_all(lanes).await;
}

/// 4. Two crafted UPDATEs at a time: [`CONTAINERS`] containers in each object, every image
///    changed and on the attacker's registry, padded to about 8 MiB.
async fn updates(ctx: Arc<Ctx>) {
    let client = ctx.client([127, 0, 0, 5]);
    let pad = "x".repeat((BIG / 2) / CONTAINERS - 200);
    let object = |round: &str| {
        let c: Vec<_> = (0..CONTAINERS)
            .map(|i| serde_json::json!({"name": format!("c{i}"), "image": format!("{}/u/c{i}:{round}", ctx.evil), "args": [pad]}))
            .collect();
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crafted"}, "spec": {"containers": c}})
    };
    let mut review = pod_review("crafted", &[]);
    review["request"]["operation"] = "UPDATE".into();
    review["request"]["object"] = object("new");
    review["request"]["oldObject"] = object("old");
    let body = Bytes::from(serde_json::to_vec(&review).unwrap());
    assert!(
        body.len() <= 8 * MIB,
        "crafted UPDATE is {} bytes",
        body.len()
    );
    let lanes = (0..2).map(|_| {
        let (ctx, client, body) = (ctx.clone(), client.clone(), body.clone());
        async move {
            while ctx.running() {
                let status = post(&client, &ctx.url(), body.clone()).await;
                ctx.tally.add(format!("updates: {status}"));
            }
        }
    });
    futures::future::join_all(lanes).await;
}

/// 5. Pods naming a fresh image of the attacker's registry, four at a time.
async fn registry_pods(ctx: Arc<Ctx>) {
    let client = ctx.client([127, 0, 0, 6]);
    let n = Arc::new(AtomicU64::new(0));
    let lanes = (0..4).map(|_| {
        let (ctx, client, n) = (ctx.clone(), client.clone(), n.clone());
        async move {
            while ctx.running() {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let review = pod_review("evil", &[format!("{}/big/app:v{i}", ctx.evil)]);
                let status = post(&client, &ctx.url(), serde_json::to_vec(&review).unwrap()).await;
                ctx.tally.add(format!("registry: {status}"));
            }
        }
    });
    futures::future::join_all(lanes).await;
}

/// Starts an attack.
type Attack = fn(Arc<Ctx>) -> tokio::task::JoinHandle<()>;

const ATTACKS: [(&str, Attack); 5] = [
    ("idle", |c| tokio::spawn(idle(c))),
    ("streams", |c| tokio::spawn(streams(c))),
    ("malformed", |c| tokio::spawn(malformed(c))),
    ("updates", |c| tokio::spawn(updates(c))),
    ("registry", |c| tokio::spawn(registry_pods(c))),
];

/// What the ordinary client and the prober saw.
#[derive(Default)]
struct Seen {
    /// Latency of each ordinary review, and whether its answer was right.
    reviews: Mutex<Vec<(Duration, bool)>>,
    healthz: Mutex<Vec<(Duration, bool)>>,
}

/// One review every 100 ms from the API server's address, each judged against `expected`,
/// each on a new connection (as after an API server restart): a full connection table shows.
async fn ordinary(ctx: Arc<Ctx>, seen: Arc<Seen>, image: String, expected: bool) {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ctx.ca).unwrap()])
        .local_address(IpAddr::from([127, 0, 0, 1]))
        .http2_prior_knowledge()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u64;
    let mut pending = Vec::new();
    while ctx.running() {
        tick.tick().await;
        n += 1;
        let (ctx, seen, client) = (ctx.clone(), seen.clone(), client.clone());
        let review = pod_review(&format!("ordinary-{n}"), std::slice::from_ref(&image));
        pending.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = (client.post(ctx.url()))
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&review).unwrap())
                .send()
                .await;
            let right = match r {
                Ok(r) if r.status() == 200 => {
                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                    v["response"]["uid"] == review["request"]["uid"]
                        && v["response"]["allowed"] == expected
                }
                _ => false,
            };
            seen.reviews.lock().unwrap().push((t0.elapsed(), right));
        }));
    }
    for p in pending {
        let _ = p.await;
    }
}

/// `GET /healthz` every 100 ms, each given 2 s.
async fn prober(ctx: Arc<Ctx>, seen: Arc<Seen>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/healthz", ctx.admin);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while ctx.running() {
        tick.tick().await;
        let t0 = Instant::now();
        let ok = matches!(client.get(&url).send().await, Ok(r) if r.status() == 200);
        seen.healthz.lock().unwrap().push((t0.elapsed(), ok));
    }
}

fn status_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The ordinary image: signed in a real registry, so its review looks it up once and is
/// answered from the cache afterwards, as most of the API server's reviews are.
async fn ordinary_image(reg: &TestRegistry, key: &SigningKey) -> String {
    let digest = reg.push_image("bench/app", "v1").await;
    let env = key.envelope(&statement(
        &digest,
        fipsgate::attest::FIPSGATE_PREDICATE,
        fips_predicate("coredns"),
    ));
    reg.push_attestation("bench/app", &digest, &[env]).await;
    format!("{}/bench/app:v1", reg.host)
}

/// The answers before any attack: the ordinary review is allowed, within a second.
async fn baseline(ctx: &Ctx, image: &str) -> Duration {
    let client = ctx.client([127, 0, 0, 1]);
    let review = pod_review("warm-up", &[image.to_string()]);
    let t0 = Instant::now();
    let r = (client.post(ctx.url()))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&review).unwrap())
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["response"]["allowed"], true, "ordinary review: {v}");
    t0.elapsed()
}

struct Report {
    reviews: Vec<(Duration, bool)>,
    healthz: Vec<(Duration, bool)>,
    peak_mib: f64,
    panics: usize,
    evil_sent: u64,
}

impl Report {
    fn print(&self, ctx: &Ctx, secs: u64) -> bool {
        let mut lat: Vec<Duration> = self.reviews.iter().map(|r| r.0).collect();
        lat.sort();
        let right = self.reviews.iter().filter(|r| r.1).count();
        let mut hz: Vec<Duration> = self.healthz.iter().map(|r| r.0).collect();
        hz.sort();
        let hz_ok = self.healthz.iter().filter(|r| r.1).count();
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        let hz_max = hz.last().copied().unwrap_or_default();
        println!("hostile: {secs} s of every attack at once against fipsgate serve");
        println!("attacks (outcome: count)");
        for (what, n) in ctx.tally.0.lock().unwrap().iter() {
            println!("  {what}: {n}");
        }
        println!(
            "  registry: the attacker's registry handed over {:.0} MiB in all",
            self.evil_sent as f64 / MIB as f64
        );
        let checks = [
            (
                format!(
                    "ordinary reviews answered correctly: {right} of {}",
                    self.reviews.len()
                ),
                right == self.reviews.len() && !self.reviews.is_empty(),
            ),
            (
                format!(
                    "ordinary review latency: p50 {}, p99 {}, max {} (target p99 < 1 s)",
                    ms(p50),
                    ms(p99),
                    ms(lat.last().copied().unwrap_or_default())
                ),
                p99 < Duration::from_secs(1),
            ),
            (
                format!(
                    "/healthz: {hz_ok} of {} answered, p99 {}, max {} (target: all within 1 s)",
                    self.healthz.len(),
                    ms(percentile(&hz, 0.99)),
                    ms(hz_max)
                ),
                hz_ok == self.healthz.len() && hz_max < Duration::from_secs(1),
            ),
            (
                format!(
                    "peak RSS (VmHWM): {:.1} MiB (target < {RSS_TARGET_MIB} MiB)",
                    self.peak_mib
                ),
                self.peak_mib < RSS_TARGET_MIB,
            ),
            (
                format!("panics in the log: {}", self.panics),
                self.panics == 0,
            ),
        ];
        let mut all = true;
        for (line, ok) in checks {
            println!("{} {line}", if ok { "PASS" } else { "FAIL" });
            all &= ok;
        }
        all
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("hostile: benchmark");
        return;
    }
    let secs: u64 = (std::env::var("HOSTILE_SECS").ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    fipsgate::infra::crypto::install();
    let reg = TestRegistry::start_with(None, false);
    let key = SigningKey::new();
    let image = ordinary_image(&reg, &key).await;
    let evil_sent = Arc::new(AtomicU64::new(0));
    let evil = evil_registry(evil_sent.clone()).await;
    let config = format!(
        "defaults: {{enforce: strict, warn: strict, audit: strict}}\nattestations:\n  enabled: true\n  \
         keys: [key.pub]\n  insecureRegistries: [\"{}\", \"{evil}\"]\n",
        reg.host
    );
    let mut server = start_server(&config, &key);
    let pid = server.child.id();
    let ca = std::fs::read(server.dir.path().join("certs/dev/ca.crt")).unwrap();
    let ctx = Arc::new(Ctx {
        port: server.port,
        admin: server.admin,
        ca,
        evil,
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });
    let warm = baseline(&ctx, &image).await;
    let rss_idle = status_kib(pid, "VmRSS:") / 1024.0;
    println!(
        "before the attacks: ordinary review {} (cold), RSS {rss_idle:.1} MiB",
        ms(warm)
    );

    let seen = Arc::new(Seen::default());
    // HOSTILE_ONLY=idle,streams,... runs only those attacks (to see what each costs).
    let only = std::env::var("HOSTILE_ONLY").unwrap_or_default();
    let on = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    let mut tasks = vec![
        tokio::spawn(ordinary(ctx.clone(), seen.clone(), image, true)),
        tokio::spawn(prober(ctx.clone(), seen.clone())),
    ];
    for (name, start) in ATTACKS {
        if on(name) {
            tasks.push(start(ctx.clone()));
        }
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    ctx.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let peak_mib = status_kib(pid, "VmHWM:") / 1024.0;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let log = std::fs::read_to_string(server.dir.path().join("fipsgate.log")).unwrap_or_default();
    let report = Report {
        reviews: std::mem::take(&mut *seen.reviews.lock().unwrap()),
        healthz: std::mem::take(&mut *seen.healthz.lock().unwrap()),
        peak_mib,
        panics: log.matches("panicked").count(),
        evil_sent: evil_sent.load(Ordering::Relaxed),
    };
    if !report.print(&ctx, secs) {
        std::process::exit(1);
    }
}
