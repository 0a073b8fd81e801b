//! Every bound on what a caller can make fipsgate hold or produce, at its edge: list entries
//! per pod, the answer's size, a declared length past the limit, buffered bytes per source
//! address, and the age of a connection.

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NGINX: &str = "docker.io/library/nginx:1.27";

fn containers(n: usize, prefix: &str) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("c{i}"), format!("{NGINX}-{prefix}{i}")))
        .collect()
}

fn pod_of(n: usize, prefix: &str) -> serde_json::Value {
    let c = containers(n, prefix);
    let pairs: Vec<(&str, &str)> = c.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    mk_pod("big", &pairs)
}

#[tokio::test]
async fn a_pod_past_the_list_bound_is_denied_and_answers_stay_small() {
    let app = TestConfig::default().app();
    app.label("ns", &[("fipsgate.io/enforce", "strict")]);
    let max = fipsgate::domain::workload::MAX_LIST_ENTRIES;
    // One past the bound: refused as it is read, a clear denial.
    let review = mk_review("u1", "ns", "CREATE", pod_of(max + 1, ""), None);
    let (status, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["status"]["code"], 400);
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("more than 1024 entries"), "{msg}");
    // At the bound, every container denied: the answer stays a few KiB.
    let review = mk_review("u2", "ns", "CREATE", pod_of(max, ""), None);
    let body = bytes(&review);
    let (status, r) = app.post("/validate", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["response"]["allowed"], false);
    let answer = serde_json::to_vec(&r).unwrap();
    assert!(answer.len() < 48 * 1024, "{} bytes answer", answer.len());
    assert!(
        answer.len() * 4 < body.len(),
        "{} of {}",
        answer.len(),
        body.len()
    );
    let msg = r["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("(1024 of 1024 containers)") && msg.ends_with('…'));
    // Warned, not denied: at most 16 warnings, 4096 characters in all.
    app.label(
        "warned",
        &[
            ("fipsgate.io/enforce", "off"),
            ("fipsgate.io/warn", "strict"),
        ],
    );
    let review = mk_review("u3", "warned", "CREATE", pod_of(max, ""), None);
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true);
    let warnings = r["response"]["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty() && warnings.len() <= 16, "{warnings:?}");
    let total: usize = (warnings.iter())
        .map(|w| w.as_str().unwrap().chars().count())
        .sum();
    assert!(total <= 4096, "{total} characters of warnings");
}

#[tokio::test]
async fn a_crafted_update_of_a_thousand_containers_is_compared_and_judged() {
    let app = TestConfig::default().app();
    app.label("ns", &[("fipsgate.io/enforce", "strict")]);
    let max = fipsgate::domain::workload::MAX_LIST_ENTRIES;
    // Every image changed: nothing is skipped, the whole pod is judged.
    let (old, new) = (pod_of(max, "old"), pod_of(max, "new"));
    let review = mk_review("u", "ns", "UPDATE", new.clone(), Some(old));
    let (status, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["response"]["allowed"], false);
    // Nothing changed: allowed without evaluation.
    let review = mk_review("u", "ns", "UPDATE", new.clone(), Some(new));
    let (_, r) = app.post("/validate", bytes(&review)).await;
    assert_eq!(r["response"]["allowed"], true);
}

/// An HTTP/1.1 request over raw TLS: what the server answered, up to `wait`.
async fn raw_request(s: &TestServer, head: &str, body: &[u8], wait: Duration) -> String {
    let mut tls = s.tls(b"http/1.1").await;
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut buf = vec![0; 4096];
    match tokio::time::timeout(wait, tls.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        other => format!("no answer: {other:?}"),
    }
}

#[tokio::test]
async fn a_declared_length_past_the_limit_is_refused_before_the_body() {
    let s = TestServer::start(Options {
        max_body_bytes: 1 << 20,
        ..Options::default()
    })
    .await;
    let head = "POST /validate HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1048577\r\n\r\n";
    let started = Instant::now();
    let answer = raw_request(&s, head, b"{", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over the length limit of 1048576 bytes"));
    // Not after the body read timeout: at once.
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn one_address_cannot_hold_every_buffered_byte() {
    let s = TestServer::start(Options {
        config: quiet_config(),
        max_body_bytes: 1 << 20,
        max_buffered_bytes: 4 << 20,
        body_read_timeout: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let ca = s.certs.ca_pem();
    let pod = std::net::IpAddr::from([127, 0, 0, 2]);
    // The pod declares a 1 MiB body and trickles it: its whole share is held.
    let addr = s.running.addr;
    let connector = tls_connector(&ca, &[b"http/1.1"]);
    let holder = tokio::spawn(async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((pod, 0).into()).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let mut tls = (connector.connect("localhost".try_into().unwrap(), tcp))
            .await
            .unwrap();
        let head = "POST /validate HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n{";
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let review = || bytes(&pod_review("u", "ns", &[("api", "nginx")]));
    let url = s.url("/validate");
    // The pod's next request finds its share taken: 503 at once.
    let from_pod = client_from(&ca, HttpVersion::H2, pod);
    let (status, _, r) = post(&from_pod, &url, review()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert!(r["error"].as_str().unwrap().contains("from this address"));
    // The API server's address is answered.
    let (status, _, r) = post(&s.client(HttpVersion::H2), &url, review()).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    // Once the trickle times out, the share is given back.
    let text = holder.await.unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let (status, _, _) = post(&from_pod, &url, review()).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = s.metrics().await;
    assert!(metrics.contains(r#"fipsgate_errors_total{kind="source_overload"} 1"#));
}

#[tokio::test]
async fn connections_are_closed_at_their_maximum_age() {
    let s = TestServer::start(Options {
        config: quiet_config(),
        max_connection_age: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    // HTTP/2: a GOAWAY ends the connection once its requests are answered.
    let tls = s.tls(b"h2").await;
    let (mut client, conn) = h2::client::handshake(tls).await.unwrap();
    let started = Instant::now();
    let conn = tokio::spawn(conn);
    let req = http::Request::post(s.url("/validate"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(req, false).unwrap();
    body.send_data(fixture("pod-create-dry-run.json").into(), true)
        .unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "HTTP/2 connection open after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // HTTP/1.1: an idle keep-alive connection is closed.
    let head = "GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut tls = s.tls(b"http/1.1").await;
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "HTTP/1.1 connection open after 5 s");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 404"));
    // A client reconnects and is served.
    let (status, _, _) = post(
        &s.client(HttpVersion::H2),
        &s.url("/validate"),
        fixture("pod-create-dry-run.json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
