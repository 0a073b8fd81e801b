//! A hostile registry, in process (plain HTTP on 127.0.0.1): bodies far larger than any
//! registry document (a manifest, a referrers list, an envelope blob, a token answer, all
//! streamed without a length), a length declared past the cap, and token realms on hosts
//! fipsgate was not told about. Each look-up fails with the cap it hit, quickly, and the
//! server has handed over about the cap, not the body. Then `attestations.registries`: an
//! image outside the list costs no request at all.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::common::registry::{SigningKey, sha256};
use fipsgate::app::chain::SourceChain;
use fipsgate::app::ports::{AssessmentSource, LookupContext};
use fipsgate::catalog::Catalog;
use fipsgate::config::{Config, KeyConfig};
use fipsgate::domain::assessment::Assessment;
use fipsgate::domain::fips::{Evidence, Status};
use fipsgate::domain::image::ImageRef;
use fipsgate::infra::source_chain;

const MIB: u64 = 1024 * 1024;
/// What the hostile registry offers: 300 MB.
const HUGE: u64 = 300 * 1000 * 1000;
const CHUNK: usize = 64 * 1024;
static SPACES: [u8; CHUNK] = [b' '; CHUNK];
/// Past the cap, what may be in flight: the loopback socket's buffers on both sides.
const IN_FLIGHT: u64 = 16 * MIB;
const OCI_IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A registry that answers each repository with one hostile move.
#[derive(Default)]
struct Hostile {
    host: String,
    /// Bytes of huge bodies handed to hyper to send.
    sent: AtomicU64,
    requests: Mutex<Vec<String>>,
    /// Each request with the `Authorization` it carried.
    authorizations: Mutex<Vec<(String, String)>>,
    /// The realm the `elsewhere` repository names in its challenge.
    realm: Mutex<String>,
    /// Requests of the `slow` repository being answered, and the most at once.
    active: AtomicU64,
    peak: AtomicU64,
}

impl Hostile {
    async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = Arc::new(Self {
            host: listener.local_addr().unwrap().to_string(),
            ..Self::default()
        });
        let app = axum::Router::new()
            .fallback(handler)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        state
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// 300 MB of spaces, chunked (no length), counted as they are handed over; with
    /// `declared`, a `Content-Length` of 300 MB and one chunk, then nothing, ever.
    fn huge(self: &Arc<Self>, content_type: &str, declared: bool) -> Response {
        let st = self.clone();
        let stream = futures::stream::unfold(0u64, move |n| {
            let st = st.clone();
            async move {
                if n >= HUGE || (declared && n > 0) {
                    if declared {
                        futures::future::pending::<()>().await;
                    }
                    return None;
                }
                st.sent.fetch_add(CHUNK as u64, Ordering::SeqCst);
                let chunk = Bytes::from_static(&SPACES);
                Some((Ok::<_, Infallible>(chunk), n + CHUNK as u64))
            }
        });
        let mut res = Response::new(Body::from_stream(stream));
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        if declared {
            headers.insert(header::CONTENT_LENGTH, HUGE.into());
        }
        res
    }
}

fn json(content_type: &str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type.to_string())], body).into_response()
}

/// A small image manifest.
fn image() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_IMAGE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": []}))
    .unwrap()
}

/// An attestation manifest with one DSSE layer that says it is small.
fn attestation() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_IMAGE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
        "layers": [{"mediaType": fipsgate::attest::DSSE_MEDIA_TYPE, "digest": sha256(b"small"), "size": 1000}]}))
    .unwrap()
}

async fn handler(
    axum::extract::State(st): axum::extract::State<Arc<Hostile>>,
    headers: axum::http::HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_string();
    st.requests.lock().unwrap().push(uri.to_string());
    let auth = (headers.get(header::AUTHORIZATION))
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (st.authorizations.lock().unwrap()).push((uri.to_string(), auth.clone()));
    let index = "application/vnd.oci.image.index.v1+json";
    let challenge = |realm: &str| {
        let value =
            format!(r#"Bearer realm="{realm}",service="hostile",scope="repository:x:push,pull""#);
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, value)],
        )
            .into_response()
    };
    let att = attestation();
    if path.starts_with("/v2/slow/") {
        let now = st.active.fetch_add(1, Ordering::SeqCst) + 1;
        st.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        st.active.fetch_sub(1, Ordering::SeqCst);
        return json(OCI_IMAGE, image());
    }
    match path.as_str() {
        "/token" => st.huge("application/json", false),
        "/v2/big/manifests/v1" => st.huge(OCI_IMAGE, false),
        "/v2/declared/manifests/v1" => st.huge(OCI_IMAGE, true),
        p if p.starts_with("/v2/refs/referrers/") => st.huge(index, false),
        p if p.starts_with("/v2/blob/referrers/") => {
            let listed = serde_json::json!({"schemaVersion": 2, "mediaType": index,
                "manifests": [{"mediaType": OCI_IMAGE, "digest": sha256(&att), "size": att.len()}]});
            json(index, serde_json::to_vec(&listed).unwrap())
        }
        p if p == format!("/v2/blob/manifests/{}", sha256(&att)) => json(OCI_IMAGE, att),
        p if p.starts_with("/v2/blob/blobs/") => st.huge("application/octet-stream", false),
        p if p.starts_with("/v2/token/") => challenge(&format!("http://{}/token", st.host)),
        p if p.starts_with("/v2/elsewhere/") => challenge(&st.realm.lock().unwrap()),
        "/auth" => json(
            "application/json",
            br#"{"access_token": "good-token", "expires_in": 300}"#.to_vec(),
        ),
        p if p.starts_with("/v2/tokened/") && auth != "Bearer good-token" => {
            challenge(&format!("http://{}/auth", st.host))
        }
        p if p.ends_with("/manifests/v1") => json(OCI_IMAGE, image()),
        _ => (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#,
        )
            .into_response(),
    }
}

/// A chain that requires attestations, speaking plain HTTP to `insecure`, contacting only
/// `allowed` (any when empty).
fn chain(insecure: &[&str], allowed: &[&str]) -> (SourceChain, tempfile::TempDir) {
    chain_with(insecure, allowed, |_, _| {})
}

fn chain_with(
    insecure: &[&str],
    allowed: &[&str],
    more: impl FnOnce(&mut Config, &std::path::Path),
) -> (SourceChain, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pub");
    std::fs::write(&key, SigningKey::new().public_pem()).unwrap();
    let mut config = Config::default();
    config.evidence.minimum = Evidence::Attestation;
    config.attestations.enabled = true;
    config.attestations.keys = vec![KeyConfig::Path(key)];
    config.attestations.insecure_registries = insecure.iter().map(|h| h.to_string()).collect();
    config.attestations.registries = allowed.iter().map(|h| h.to_string()).collect();
    // Far longer than any case may take: a case that waited for a timeout fails on time.
    config.attestations.call_timeout = "20s".into();
    more(&mut config, dir.path());
    let (metrics, _) = fipsgate::telemetry::metrics::Metrics::new();
    let chain = source_chain(&config, Arc::new(Catalog::embedded()), metrics, None).unwrap();
    (chain, dir)
}

async fn assess(chain: &SourceChain, image: &str) -> (Assessment, Duration) {
    let started = Instant::now();
    let img = ImageRef::parse(image).unwrap();
    let res = chain.assess(&img, &LookupContext::default()).await;
    (res, started.elapsed())
}

/// What the server handed over once the connection is gone (it no longer grows).
async fn settled(reg: &Hostile) -> u64 {
    let mut last = reg.sent();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = reg.sent();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Each hostile body is refused at its cap, as a look-up failure (never a verdict), quickly,
/// after about the cap has been read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_at_their_cap() {
    let cases = [
        (
            "big:v1",
            "manifest of {h}/big:v1 is larger than 4194304 bytes",
            4 * MIB,
        ),
        ("refs:v1", "referrers list of refs@sha256:", MIB),
        ("blob:v1", "attestation blob sha256:", MIB),
        (
            "token:v1",
            "token response of http://{h}/token is larger than 65536 bytes",
            64 * 1024,
        ),
    ];
    for (image, want, cap) in cases {
        let reg = Hostile::start().await;
        let h = reg.host.as_str();
        let (chain, _dir) = chain(&[h], &[]);
        let (res, took) = assess(&chain, &format!("{h}/{image}")).await;
        let problem = res.problem().unwrap_or_default().to_string();
        let want = want.replace("{h}", h);
        assert_eq!(res.status(), Status::Unknown, "{image}: {res:?}");
        assert!(
            problem.starts_with(&format!("attestation lookup failed: registry {h}: ")),
            "{image}: {problem}"
        );
        assert!(problem.contains(&want), "{image}: {problem}");
        assert!(
            problem.ends_with(&format!("is larger than {cap} bytes")),
            "{image}: {problem}"
        );
        assert!(took < Duration::from_secs(5), "{image}: took {took:?}");
        let sent = settled(&reg).await;
        eprintln!(
            "{image}: refused after {took:?}; the server handed over {} KiB of {} MB (cap {} KiB)",
            sent / 1024,
            HUGE / 1000 / 1000,
            cap / 1024
        );
        assert!(sent >= cap, "{image}: only {sent} bytes sent");
        assert!(sent <= cap + IN_FLIGHT, "{image}: {sent} bytes sent");
    }
}

/// A body whose declared length is past the cap is refused before it is read: this one sends
/// one chunk and then nothing, so reading it would wait for the timeout.
#[tokio::test]
async fn a_declared_length_past_the_cap_is_refused_before_reading() {
    let reg = Hostile::start().await;
    let h = reg.host.as_str();
    let (chain, _dir) = chain(&[h], &[]);
    let (res, took) = assess(&chain, &format!("{h}/declared:v1")).await;
    let want = format!("manifest of {h}/declared:v1 is larger than 4194304 bytes");
    assert!(
        res.problem().unwrap_or_default().ends_with(&want),
        "{res:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A challenge whose realm is on another host: refused when that host is not an allowed
/// registry, or when it would be plain HTTP to a host not listed as insecure. The other host
/// never hears from fipsgate.
#[tokio::test]
async fn a_token_realm_elsewhere_is_not_contacted() {
    let reg = Hostile::start().await;
    let other = Hostile::start().await;
    *reg.realm.lock().unwrap() = format!("http://{}/token", other.host);
    let (h, o) = (reg.host.as_str(), other.host.as_str());
    let cases = [
        (
            chain(&[h, o], &[h]),
            format!("token realm \"http://{o}/token\": {o} is not in attestations.registries"),
        ),
        (
            chain(&[h], &[]),
            format!(
                "token realm \"http://{o}/token\": not HTTPS (plain HTTP only to insecureRegistries)"
            ),
        ),
    ];
    for ((chain, _dir), want) in cases {
        let (res, took) = assess(&chain, &format!("{h}/elsewhere:v1")).await;
        assert_eq!(res.status(), Status::Unknown, "{res:?}");
        assert!(res.problem().unwrap().contains(&want), "{res:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
    assert_eq!(other.requests(), Vec::<String>::new());
    assert_eq!(reg.requests().len(), 2, "{:?}", reg.requests());
}

/// `attestations.registries`: an image on a registry outside the list gets no registry
/// evidence and costs no request; the reason names the list. The same image on a listed
/// registry is looked up.
#[tokio::test]
async fn a_registry_outside_the_list_is_never_contacted() {
    let reg = Hostile::start().await;
    let h = reg.host.as_str();
    let image = format!("{h}/team/app:v1");
    let (outside, _d1) = chain(&[h], &["registry.example.com", "*.example.com"]);
    let (res, _) = assess(&outside, &image).await;
    assert_eq!(
        res.problem(),
        Some(
            format!(
                "no FIPS attestation looked up for {image}: registry {h} is not in \
                 attestations.registries (registry.example.com, *.example.com)"
            )
            .as_str()
        ),
        "{res:?}"
    );
    // No evidence, not a look-up failure: the failure behaviour does not apply.
    assert_eq!(
        (res.status(), res.evidence()),
        (Status::None, Evidence::None)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(reg.requests(), Vec::<String>::new());

    let (listed, _d2) = chain(&[h], &["registry.example.com", h]);
    let (res, _) = assess(&listed, &image).await;
    let problem = res.problem().unwrap_or_default();
    assert!(
        problem.starts_with("no FIPS attestation for sha256:"),
        "{res:?}"
    );
    assert!(
        reg.requests()
            .contains(&"/v2/team/app/manifests/v1".to_string()),
        "{:?}",
        reg.requests()
    );
}

/// The token flow: a 401 names a realm; fipsgate asks it for a pull token of the repository
/// (whatever scope the challenge asked for), with its credentials for that registry, and sends
/// the registry only the token, which it reuses for every later call of the look-up.
#[tokio::test]
async fn a_bearer_challenge_is_answered_with_a_pull_token_reused_while_it_lives() {
    use base64::Engine as _;
    let reg = Hostile::start().await;
    let h = reg.host.as_str();
    let (chain, _dir) = chain_with(&[h], &[], |config, dir| {
        let docker = dir.join("config.json");
        let auths =
            format!(r#"{{"auths": {{"{h}": {{"username": "robot", "password": "s3cret"}}}}}}"#);
        std::fs::write(&docker, auths).unwrap();
        config.attestations.docker_config = Some(docker);
    });
    let (res, _) = assess(&chain, &format!("{h}/tokened:v1")).await;
    assert!(
        res.problem()
            .unwrap_or_default()
            .starts_with("no FIPS attestation for sha256:"),
        "{res:?}"
    );
    let log = reg.authorizations.lock().unwrap().clone();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("robot:s3cret")
    );
    let realm: Vec<_> = log.iter().filter(|(u, _)| u.starts_with("/auth")).collect();
    assert_eq!(
        realm,
        [&(
            "/auth?scope=repository%3Atokened%3Apull&service=hostile".to_string(),
            basic
        )],
        "{log:?}"
    );
    // The registry saw one unauthenticated request (the challenge), then only the token.
    let to_registry: Vec<_> = log.iter().filter(|(u, _)| u.starts_with("/v2/")).collect();
    assert_eq!(to_registry[0].1, "", "{log:?}");
    assert!(to_registry.len() >= 4, "{log:?}");
    assert!(
        to_registry[1..]
            .iter()
            .all(|(_, a)| a == "Bearer good-token"),
        "{log:?}"
    );
}

/// However many images of one registry a pod names, at most a few reads of that registry are
/// in flight at once (each may hold a capped body); the rest wait their turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_one_registry_take_turns() {
    let reg = Hostile::start().await;
    let h = reg.host.as_str();
    let (chain, _dir) = chain(&[h], &[]);
    let all = (0..40).map(|i| {
        let chain = &chain;
        async move { assess(chain, &format!("{h}/slow:v{i}")).await }
    });
    let results = futures::future::join_all(all).await;
    assert_eq!(results.len(), 40);
    let peak = reg.peak.load(Ordering::SeqCst);
    assert!(peak >= 2, "reads ran one at a time: {peak}");
    assert!(peak <= 4, "{peak} reads of one registry at once");
}
