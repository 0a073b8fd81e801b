//! Reading a request within its limits: the body (bounded in bytes and time), a decision slot,
//! the content type, the `?timeout=` budget and the review itself. A refusal renders itself as
//! a JSON 4xx or 503.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::admission::{self, Parsed};
use crate::config::parse_duration;

use super::conn::Peer;
use super::shares::{Share, Shares, Short};

/// The API server's default webhook timeout, used when a request carries none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds on what one request may take.
pub struct Limits {
    pub max_body_bytes: usize,
    /// A body not received within this long is refused (slow uploads cannot hold a slot).
    pub body_read_timeout: Duration,
    /// Body bytes held at once, in all and per source address: taken before a body is read
    /// (its declared length, or the largest body when it declares none), given back once the
    /// request is answered. Past it a request is refused at once with 503.
    pub buffered: Arc<Shares>,
    /// Requests being decided at once, in all and per source address; the excess is refused
    /// at once with 503.
    pub in_flight: Arc<Shares>,
}

/// Of every shared bound, one source address may take this fraction (1/4): the API server
/// keeps three quarters whatever one pod does.
const SOURCE_SHARE: usize = 4;
/// Bodies this large or larger are parsed on the blocking pool, off the async workers that
/// also answer `/healthz` and read other requests (64 KiB parses in about 0.2 ms).
const BLOCKING_PARSE_BYTES: usize = 64 * 1024;

impl Limits {
    /// Limits with `max_buffered_bytes` of bodies held at once (at least one largest body per
    /// source share).
    pub fn new(
        max_body_bytes: usize,
        body_read_timeout: Duration,
        max_in_flight: usize,
        max_buffered_bytes: usize,
    ) -> Self {
        let buffered = max_buffered_bytes.max(max_body_bytes * SOURCE_SHARE);
        Self {
            max_body_bytes,
            body_read_timeout,
            buffered: Shares::new(buffered, buffered / SOURCE_SHARE),
            in_flight: Shares::new(max_in_flight, (max_in_flight / SOURCE_SHARE).max(1)),
        }
    }
}

#[derive(Deserialize)]
pub struct ValidateQuery {
    timeout: Option<String>,
}

/// A request read and parsed, holding its share of the buffered bytes and its decision slot
/// until it is answered.
pub struct Read {
    pub req: Parsed,
    pub deadline: tokio::time::Instant,
    pub held: (Share, Share),
}

/// Why a request was refused before it could be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("body is over the length limit of {0} bytes")]
    TooLarge(usize),
    #[error("cannot read body: {0}")]
    Unreadable(String),
    #[error("body not received within {0} ms")]
    TooSlow(u128),
    #[error("{}", overloaded(.0))]
    Overloaded(Short),
    #[error("content type must be application/json, got {0:?}")]
    ContentType(String),
    #[error("query: {0}")]
    Query(String),
    #[error("timeout: {0}")]
    Timeout(String),
    /// Not an AdmissionReview fipsgate can answer (no uid, not JSON, ...).
    #[error("{0}")]
    Unanswerable(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Unreadable(_)
            | Refusal::Query(_)
            | Refusal::Timeout(_)
            | Refusal::Unanswerable(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = json_error(self.status(), &self.to_string());
        if matches!(self, Refusal::Overloaded(_)) {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

fn overloaded(short: &Short) -> &'static str {
    match short {
        Short::Source => "too many admission requests or bytes in flight from this address; retry",
        Short::Total => "too many admission requests or bytes in flight; retry",
    }
}

pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Reads and parses the request within `limits`: everything that can be refused without the
/// body is, before the body is read.
pub async fn read(
    limits: &Limits,
    query: Result<Query<ValidateQuery>, QueryRejection>,
    parts: &Parts,
    body: axum::body::Body,
    started: Instant,
) -> Result<Read, Refusal> {
    let source = parts
        .extensions
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0);
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return Err(Refusal::ContentType(content_type.to_string()));
    }
    let Query(query) = query.map_err(|e| Refusal::Query(e.body_text()))?;
    let timeout = match query.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(t) => parse_duration(t).map_err(Refusal::Timeout)?,
    };
    let deadline = tokio::time::Instant::from_std(started + budget(timeout));
    let declared = (parts.headers.get(header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(Refusal::TooLarge(limits.max_body_bytes));
    }
    let size = declared.unwrap_or(limits.max_body_bytes);
    let bytes = (limits.buffered.take(source, size)).map_err(Refusal::Overloaded)?;
    let body = read_body(limits, body, size, declared).await?;
    // Taken after the body is in: slow uploads cannot hold decision slots.
    let slot = (limits.in_flight.take(source, 1)).map_err(Refusal::Overloaded)?;
    let req = if body.len() < BLOCKING_PARSE_BYTES {
        admission::parse(&body)
    } else {
        tokio::task::spawn_blocking(move || admission::parse(&body))
            .await
            .map_err(|e| Refusal::Unreadable(e.to_string()))?
    };
    let req = req.map_err(|e| Refusal::Unanswerable(e.0))?;
    Ok(Read {
        req,
        deadline,
        held: (bytes, slot),
    })
}

/// The body, within `max` bytes and the read timeout. A declared length (already checked
/// against the limit) is allocated once, so a large body never costs twice its size while
/// its buffer grows.
async fn read_body(
    limits: &Limits,
    mut body: axum::body::Body,
    max: usize,
    declared: Option<usize>,
) -> Result<Bytes, Refusal> {
    use http_body_util::BodyExt as _;
    let read = async {
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(max));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Refusal::Unreadable(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max {
                    return Err(Refusal::TooLarge(limits.max_body_bytes));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(Refusal::TooSlow(limits.body_read_timeout.as_millis())),
    }
}

/// How long fipsgate may work on a request that allows `timeout`: the answer must reach the
/// API server before it gives up, so the budget ends well before (a fifth, at least 250 ms).
pub fn budget(timeout: Duration) -> Duration {
    let timeout = timeout.clamp(Duration::from_secs(1), Duration::from_secs(30));
    timeout
        .saturating_sub((timeout / 5).max(Duration::from_millis(250)))
        .max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_ends_before_the_timeout() {
        let cases = [(1, 750), (5, 4000), (10, 8000), (30, 24000), (60, 24000)];
        for (secs, ms) in cases {
            assert_eq!(
                budget(Duration::from_secs(secs)),
                Duration::from_millis(ms),
                "{secs}s"
            );
        }
        assert_eq!(budget(Duration::ZERO), Duration::from_millis(750));
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_by_its_error_type() {
        let limits = Limits::new(4, Duration::from_secs(1), 1, 0);
        let body = axum::body::Body::from("too long");
        assert_eq!(
            read_body(&limits, body, 4, None).await.unwrap_err(),
            Refusal::TooLarge(4)
        );
        let body = axum::body::Body::from("fine");
        assert_eq!(read_body(&limits, body, 4, None).await.unwrap(), "fine");
    }
}
