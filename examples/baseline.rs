//! The floor for the load benchmark: fipsgate's own TLS + HTTP/2 serving stack answering a
//! fixed "allowed" AdmissionReview without parsing the request. Not part of the product.
//!
//! `cargo run --release --example baseline -- LISTEN CERT KEY`

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (listen, cert, key) = match (args.next(), args.next(), args.next()) {
        (Some(l), Some(c), Some(k)) => (l, c, k),
        _ => anyhow::bail!("usage: baseline LISTEN CERT KEY"),
    };
    let provider = fipsgate::infra::crypto::install();
    let cert = Arc::new(fipsgate::server::tls::ReloadingCert::load(
        fipsgate::server::CertPaths {
            cert: cert.into(),
            key: key.into(),
        },
        provider.clone(),
    )?);
    let tls = fipsgate::server::tls::server_config(cert, provider, None)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    const ALLOW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"baseline","allowed":true}}"#;
    let app = Router::new().route(
        "/validate",
        // The body is read, as any webhook must (an unread body makes HTTP/2 reset the stream).
        post(|_body: axum::body::Bytes| async { ([("content-type", "application/json")], ALLOW) }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("baseline listening on {}", listener.local_addr()?);
    let (_never, stop) = tokio::sync::watch::channel(false);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(fipsgate::server::serve_connection(
            tcp,
            acceptor.clone(),
            app.clone(),
            Duration::from_secs(10),
            Duration::from_secs(600),
            stop.clone(),
        ));
    }
}
