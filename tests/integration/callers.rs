//! Client authentication on the webhook port, over real sockets: with `--client-ca`, only a
//! caller with a certificate from that CA (and, with `--client-name`, of that name) is served.

use crate::common::*;
use fipsgate::server::ClientAuth;
use reqwest::StatusCode;

/// A client presenting `identity` (PEM certificate and key), trusting the server's CA.
fn client_with(s: &TestServer, identity: Option<(String, String)>) -> reqwest::Client {
    install_provider();
    let ca = reqwest::Certificate::from_pem(&s.certs.ca_pem()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .http2_prior_knowledge();
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn issued(s: &TestServer, name: &str) -> (String, String) {
    let read = |f: &str| std::fs::read_to_string(s.certs.path(f)).unwrap();
    let (ca, key) = (read("ca.crt"), read("ca.key"));
    fipsgate::infra::certs::client(name, (&ca, &key), 1).unwrap()
}

#[tokio::test]
async fn only_the_api_servers_certificate_is_served() {
    let certs = Certs::new();
    let client_auth = Some(ClientAuth {
        ca: certs.path("ca.crt"),
        names: vec!["kube-apiserver".into()],
    });
    let s = TestServer::start_with_certs(
        Options {
            config: quiet_config(),
            client_auth,
            ..Options::default()
        },
        certs,
    )
    .await;
    let url = s.url("/validate");
    let review = || fixture("pod-create-dry-run.json");
    let send = |c: reqwest::Client| {
        let url = url.clone();
        async move {
            c.post(url)
                .header("content-type", "application/json")
                .body(review())
                .send()
                .await
        }
    };
    // The API server's certificate: served.
    let r = send(client_with(&s, Some(issued(&s, "kube-apiserver")))).await;
    assert_eq!(r.unwrap().status(), StatusCode::OK);
    // No certificate, a certificate of another name, one from another CA: refused in the
    // handshake, no request is read.
    let other_ca = fipsgate::infra::certs::generate(&["x".into()], None, 1).unwrap();
    let foreign =
        fipsgate::infra::certs::client("kube-apiserver", (&other_ca.ca_cert, &other_ca.ca_key), 1)
            .unwrap();
    for (who, identity) in [
        ("no certificate", None),
        ("another name", Some(issued(&s, "intruder"))),
        ("another CA", Some(foreign)),
    ] {
        let r = send(client_with(&s, identity)).await;
        assert!(r.is_err(), "{who}: served {r:?}");
    }
    // The admin port needs no certificate (probes and scrapes).
    let r = reqwest::get(s.admin_url("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Both certificates' expiry, the build and the process are exported.
    let metrics = s.metrics().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    for which in ["serving", "client_ca"] {
        let prefix =
            format!("fipsgate_certificate_expiry_timestamp_seconds{{certificate=\"{which}\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&prefix));
        let t: f64 = line
            .and_then(|l| l[prefix.len()..].parse().ok())
            .unwrap_or(0.0);
        // In the future, within the ten years `Certs` could give a CA.
        assert!(t > now && t < now + 3650.0 * 86_400.0, "{which}: {line:?}");
    }
    let fips = fipsgate::infra::crypto::FIPS_BUILD;
    let build = format!(
        "fipsgate_build_info{{version=\"{}\",fips=\"{fips}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(metrics.lines().any(|l| l == build), "{metrics}");
    for name in [
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(name)),
            "{name}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_client_ca_without_a_certificate_stops_the_start() {
    let certs = Certs::new();
    let empty = certs.dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let opts = Options {
        client_auth: Some(ClientAuth {
            ca: empty.clone(),
            names: Vec::new(),
        }),
        ..Options::default()
    };
    let e = TestServer::try_start_with_certs(opts, certs)
        .await
        .err()
        .expect("started with an unusable client CA");
    assert!(e.contains("empty.pem"), "{e}");
}
