//! What only a socket shows: the real server on 127.0.0.1:0 spoken to over HTTPS (HTTP/2 and
//! HTTP/1.1) and raw TLS: both HTTP versions, slow clients, certificate rotation, readiness and
//! drain, floods and the connection limit. The webhook's behaviour is `admission`'s, in process.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UID: &str = "beda5770-d7a3-4fc3-8492-1b2de81a3b26";

async fn quiet_server() -> TestServer {
    TestServer::start(Options {
        config: quiet_config(),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn captured_pod_create_is_denied_over_both_http_versions() {
    let s = quiet_server().await;
    for (version, want) in [
        (HttpVersion::H2, reqwest::Version::HTTP_2),
        (HttpVersion::H1, reqwest::Version::HTTP_11),
    ] {
        let c = s.client(version);
        let (status, got_version, r) = post(
            &c,
            &s.url("/validate?timeout=5s"),
            fixture("pod-create-init-and-containers.json"),
        )
        .await;
        assert_eq!((status, got_version), (StatusCode::OK, want));
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(r["kind"], "AdmissionReview");
        assert_eq!(r["response"]["uid"], UID);
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(r["response"]["status"]["code"], 403);
        assert_eq!(r["response"]["status"]["reason"], "Forbidden");
        let msg = r["response"]["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains(
                "init container \"init\" (busybox:1.36) is not a FIPS-compliant component"
            ),
            "{msg}"
        );
        assert!(msg.contains("(1 of 3 containers)"), "{msg}");
        assert_eq!(r["response"]["auditAnnotations"]["decision"], "deny");
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let s = TestServer::start(Options {
        header_read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    // TLS handshake done, then headers that never finish.
    let connector = tls_connector(&s.certs.ca_pem(), &[b"http/1.1"]);
    let tcp = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A bare TCP connection that never starts TLS is closed too.
    let mut raw = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "silent TCP connection still open after 5 s");
}

#[tokio::test]
async fn certificate_rotation_while_requests_flow() {
    let s = quiet_server().await;
    let ca = s.certs.ca_pem();
    let before = served_cert(&s).await;
    // A fresh connection (and handshake) per request, so every request sees the current pair.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = s.url("/validate");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(fixture("pod-create-dry-run.json"))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.certs.rotate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_cert(&s).await == before {
        assert!(
            Instant::now() < deadline,
            "new certificate not served within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A broken pair keeps the good one in place.
    std::fs::write(
        s.certs.path("tls.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rotated = served_cert(&s).await;
    assert_ne!(rotated, before);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = load.await.unwrap();
    assert_eq!(
        failed, 0,
        "{failed} requests failed during rotation ({ok} succeeded)"
    );
    assert!(ok > 10, "only {ok} requests went through");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="tls_reload"} 1"#),
        "{metrics}"
    );
}

/// The leaf certificate the server presents now (DER).
async fn served_cert(s: &TestServer) -> Vec<u8> {
    let connector = tls_connector(&s.certs.ca_pem(), &[]);
    let tcp = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn readiness_and_drain_on_shutdown() {
    let source = slow(Duration::from_millis(800));
    let s = TestServer::start(Options {
        config: quiet_config(),
        source: Some(source.clone()),
        shutdown_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let ready = reqwest::get(s.admin_url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        reqwest::get(s.admin_url("/healthz"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let c = s.client(HttpVersion::H2);
    let mut inflight = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        let url = s.url("/validate");
        let body = bytes(&pod_review(&format!("d{i}"), "ns", &[("api", FIPS_API)]));
        inflight.push(tokio::spawn(async move { post(&c, &url, body).await }));
    }
    while source.calls.load(Ordering::SeqCst) < 8 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let admin = s.admin_url("/readyz");
    s.running.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::get(&admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["shuttingDown"], true);
    for h in inflight {
        let (status, _, r) = h.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(r["response"]["allowed"], true);
    }
    let started = Instant::now();
    s.running.wait().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_leaves_room_for_a_well_behaved_request() {
    let s = TestServer::start(Options {
        config: quiet_config(),
        source: Some(slow(Duration::from_millis(300))),
        max_concurrent_requests: 8,
        max_connections: 64,
        body_read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let addr = s.running.addr;
    let ca = s.certs.ca_pem();
    let started = Instant::now();
    // 1. Slow bodies: headers promise 4 KiB, one byte comes. They must not hold decision slots.
    let connector = tls_connector(&ca, &[b"http/1.1"]);
    let mut slow_bodies = Vec::new();
    for _ in 0..20 {
        let connector = connector.clone();
        slow_bodies.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut tls = connector.connect("localhost".try_into().unwrap(), tcp).await.unwrap();
            tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{").await.unwrap();
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
            String::from_utf8_lossy(&buf).into_owned()
        }));
    }
    // 2. A burst of 200 real reviews over 10 HTTP/2 connections from another address, which
    //    may have 2 of the 8 decision slots.
    let flood = std::net::IpAddr::from([127, 0, 0, 2]);
    let clients: Vec<_> = (0..10)
        .map(|_| client_from(&ca, HttpVersion::H2, flood))
        .collect();
    let mut burst = Vec::new();
    for i in 0..200 {
        let c = clients[i % clients.len()].clone();
        let url = s.url("/validate?timeout=5s");
        let body = bytes(&pod_review(&format!("f{i}"), "ns", &[("api", FIPS_API)]));
        burst.push(tokio::spawn(async move {
            c.post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    // 3. The well-behaved request, from its own address: answered at once, in the flood.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = s.client(HttpVersion::H2);
    let (status, _, answer) = post(
        &c,
        &s.url("/validate?timeout=5s"),
        fixture("pod-create-dry-run.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["response"]["allowed"], false);
    let (mut ok, mut refused) = (0, 0);
    for b in burst {
        match b.await.unwrap() {
            Ok(StatusCode::OK) => ok += 1,
            Ok(StatusCode::SERVICE_UNAVAILABLE) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(ok >= 2 && ok + refused == 200, "ok {ok}, refused {refused}");
    for sb in slow_bodies {
        let text = sb.await.unwrap();
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="source_overload"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let s = TestServer::start(Options {
        max_connections: 2,
        ..Options::default()
    })
    .await;
    let ca = s.certs.ca_pem();
    let (a, b) = (client(&ca, HttpVersion::H2), client(&ca, HttpVersion::H2));
    let url = s.url("/validate");
    // Two clients hold the two connections (HTTP/2 keeps them open).
    assert_eq!(
        post(&a, &url, fixture("pod-create-dry-run.json")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&b, &url, fixture("pod-create-dry-run.json")).await.0,
        StatusCode::OK
    );
    let third = client(&ca, HttpVersion::H2);
    let started = Instant::now();
    let r = third
        .post(&url)
        .header("content-type", "application/json")
        .body(fixture("pod-create-dry-run.json"))
        .send()
        .await;
    assert!(r.is_err(), "a third connection was served");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop((a, b));
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"fipsgate_errors_total{kind="connection_limit"}"#),
        "{metrics}"
    );
}

/// A connection may open only a few HTTP/2 streams at once: each may hold a body being read,
/// so the streams of one connection cannot add up to more memory than a handful of requests.
#[tokio::test]
async fn http2_connections_open_few_streams() {
    let s = quiet_server().await;
    let tcp = tokio::net::TcpStream::connect(s.running.addr)
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tls_connector(&s.certs.ca_pem(), &[b"h2"])
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut client, mut conn) = h2::client::handshake(tls).await.unwrap();
    let req = http::Request::post(s.url("/validate"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(req, false).unwrap();
    body.send_data(fixture("pod-create-dry-run.json").into(), true)
        .unwrap();
    // Drive the connection until the answer: the server's settings are in by then.
    let response = tokio::select! {
        r = response => r.unwrap(),
        r = &mut conn => panic!("connection ended first: {r:?}"),
    };
    assert_eq!(response.status(), 200);
    assert_eq!(
        conn.max_concurrent_send_streams(),
        fipsgate::server::MAX_STREAMS as usize
    );
}

/// After the TLS handshake, a client that sends nothing at all is closed too: the protocol
/// comes from ALPN, and nothing waits unbounded for a first byte.
#[tokio::test]
async fn silent_connections_after_tls_are_closed() {
    let s = TestServer::start(Options {
        header_read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let connector = tls_connector(&s.certs.ca_pem(), &[alpn]);
        let tcp = tokio::net::TcpStream::connect(s.running.addr)
            .await
            .unwrap();
        let mut tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "{}: silent connection still open after 5 s",
            String::from_utf8_lossy(alpn)
        );
    }
}

/// The admin port has the webhook port's limits: a silent client is closed after the header
/// timeout, connections past the cap are closed at once, and probes get through afterwards.
#[tokio::test]
async fn the_admin_port_bounds_its_clients() {
    let s = TestServer::start(Options {
        header_read_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let admin = s.running.admin_addr;
    let mut held = Vec::new();
    for _ in 0..fipsgate::server::MAX_ADMIN_CONNECTIONS {
        held.push(tokio::net::TcpStream::connect(admin).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = tokio::net::TcpStream::connect(admin).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_millis(300), extra.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a connection past the cap is closed at once");
    let read = tokio::time::timeout(Duration::from_secs(3), held[0].read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a silent admin connection is closed after the header timeout"
    );
    let health = reqwest::get(s.admin_url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// One source cannot take every connection: past its own cap its new connections are closed at
/// once, while another address still connects and is answered.
#[tokio::test]
async fn one_source_cannot_take_every_connection() {
    let s = TestServer::start(Options {
        max_connections_per_source: 4,
        ..Options::default()
    })
    .await;
    let from = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let addr = s.running.addr;
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((ip, 0).into()).unwrap();
            socket.connect(addr).await.unwrap()
        }
    };
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(from("127.0.0.1").await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut fifth = from("127.0.0.1").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_millis(500), fifth.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a fifth connection from one source is closed at once"
    );
    // Another source is served: a TLS handshake from 127.0.0.2 completes.
    let other = from("127.0.0.2").await;
    let connector = tls_connector(&s.certs.ca_pem(), &[b"http/1.1"]);
    let tls = connector
        .connect("localhost".try_into().unwrap(), other)
        .await;
    assert!(tls.is_ok(), "{:?}", tls.err());
}
