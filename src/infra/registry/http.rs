//! Registry reads over HTTP (reqwest). Every body is read chunk by chunk under a cap, whatever
//! length it declares. Authentication is anonymous, Basic, or the Docker/OCI token flow, with
//! the answer cached per registry, repository and credentials. Plain HTTP is spoken only to the
//! insecure registries, and a token realm must itself be an allowed registry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE,
};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;

use super::credentials::RegistryAuth;
use crate::config::AllowedRegistries;

/// A manifest larger than this is refused: CNCF Distribution accepts none larger.
pub(super) const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// A referrers list larger than this is refused.
pub(super) const MAX_REFERRERS_BYTES: usize = 1024 * 1024;
/// A token endpoint's answer larger than this is refused.
pub(super) const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Of an error answer, at most this much is read (for its message).
const MAX_ERROR_BYTES: usize = 16 * 1024;
/// A body is given at most this much room before its bytes arrive, whatever it declares.
const MAX_PRESIZE: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 3;
/// Registry reads in flight at once, and per registry host: each may hold a capped body, so
/// these bound the memory the registry side can take (16 × 4 MiB) whatever pods name; more
/// wait for their turn within their admission deadline.
pub(super) const MAX_FETCHES: usize = 16;
pub(super) const MAX_FETCHES_PER_HOST: usize = 4;
/// How long a token is used when its endpoint does not say.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long Basic credentials a registry asked for are sent without being asked again.
const BASIC_TTL: Duration = Duration::from_secs(600);
/// OCI error codes that mean "no such thing" rather than a failure.
const NOT_FOUND_CODES: &[&str] = &[
    "MANIFEST_UNKNOWN",
    "NAME_UNKNOWN",
    "BLOB_UNKNOWN",
    "NOT_FOUND",
];

/// Why a registry read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FetchError {
    #[error("{what} is larger than {cap} bytes")]
    TooLarge { what: String, cap: usize },
    #[error("GET {url}: {status}{detail}")]
    Status {
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("GET {url}: {message}")]
    Transport { url: String, message: String },
    #[error("{0}")]
    Refused(String),
}

/// One repository of a registry, and who fipsgate is to it.
pub(super) struct Repo<'a> {
    /// As references name it (`docker.io`, `r.io:5000`).
    pub registry: &'a str,
    pub repository: &'a str,
    pub auth: &'a RegistryAuth,
    /// Tokens asked for are to push as well as pull (`fipsgate attest`).
    pub push: bool,
}

/// A request as sent: a GET, or a write when pushing.
pub(super) struct Outgoing<'a> {
    pub method: reqwest::Method,
    pub url: &'a Url,
    pub accept: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Option<&'a [u8]>,
}

/// A registry's answer to a write.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The registry's error, for a refusal: `MANIFEST_INVALID manifest invalid`, or the text.
    pub fn detail(&self) -> String {
        match serde_json::from_slice::<ErrorEnvelope>(&self.body) {
            Ok(e) if !e.errors.is_empty() => (e.errors.iter())
                .map(|e| format!("{} {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::from_utf8_lossy(&self.body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        }
    }
}

/// An answer whose body is read as it arrives, with the turns it holds.
pub(super) struct Streaming {
    res: Response,
    _turns: (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
}

impl Streaming {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        (self.res.chunk().await).map_err(|e| transport(self.res.url(), e))
    }
}

/// A body read within its cap, with the digest the registry says it has.
pub(super) struct Body {
    pub bytes: Vec<u8>,
    pub digest: Option<String>,
}

/// An `Authorization` value and how long it may be sent.
#[derive(Clone)]
struct Authorization {
    header: HeaderValue,
    ttl: Duration,
}

struct Lifetime;

impl moka::Expiry<String, Authorization> for Lifetime {
    fn expire_after_create(&self, _: &String, v: &Authorization, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// The HTTP client of every registry.
pub(super) struct Http {
    client: reqwest::Client,
    insecure: Vec<String>,
    allowed: AllowedRegistries,
    authorizations: moka::future::Cache<String, Authorization>,
    fetches: Arc<tokio::sync::Semaphore>,
    /// Per host; a host evicted while busy only gets a fresh allowance.
    host_fetches: moka::sync::Cache<String, Arc<tokio::sync::Semaphore>>,
}

impl Http {
    /// `insecure` lists the `host[:port]`s spoken to over plain HTTP; `timeout` bounds each
    /// connection and each read.
    pub fn new(
        insecure: &[String],
        allowed: AllowedRegistries,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("fipsgate/", env!("CARGO_PKG_VERSION")))
            .redirect(redirects())
            .referer(false)
            .build()
            .map_err(|e| format!("registry HTTP client: {}", chain(&e)))?;
        Ok(Self {
            client,
            insecure: insecure.to_vec(),
            allowed,
            authorizations: moka::future::Cache::builder()
                .max_capacity(1024)
                .expire_after(Lifetime)
                .build(),
            fetches: Arc::new(tokio::sync::Semaphore::new(MAX_FETCHES)),
            host_fetches: moka::sync::Cache::new(1024),
        })
    }

    /// `GET /v2/<repository>/<path>`, its body read within `cap` (`what` names it in the
    /// refusal); `None` when the registry has no such thing.
    pub async fn get(
        &self,
        repo: &Repo<'_>,
        path: &str,
        accept: Option<&str>,
        cap: usize,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<Option<Body>, FetchError> {
        let Some(open) = self.open(repo, path, accept).await? else {
            return Ok(None);
        };
        let digest = (open.res.headers().get("docker-content-digest"))
            .and_then(|v| v.to_str().ok())
            .filter(|d| !d.is_empty())
            .map(str::to_string);
        let bytes = read_capped(open.res, cap, what).await?;
        Ok(Some(Body { bytes, digest }))
    }

    /// `GET /v2/<repository>/<path>` whose body is read as it arrives (a layer): refused
    /// before a byte is read when it declares more than `cap`; `None` when the registry has
    /// no such thing. The answer holds its turns until it is dropped.
    pub async fn stream(
        &self,
        repo: &Repo<'_>,
        path: &str,
        cap: u64,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<Option<Streaming>, FetchError> {
        let Some(open) = self.open(repo, path, None).await? else {
            return Ok(None);
        };
        if open.res.content_length().is_some_and(|n| n > cap) {
            return Err(FetchError::TooLarge {
                what: what(),
                cap: usize::try_from(cap).unwrap_or(usize::MAX),
            });
        }
        Ok(Some(open))
    }

    /// Sends the request in its turn: a 200 answer, `None` for "no such thing", else the
    /// registry's refusal as an error.
    async fn open(
        &self,
        repo: &Repo<'_>,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Option<Streaming>, FetchError> {
        let url = self.url(repo, path)?;
        // The host's turn first, so a busy host waits without holding a global one.
        let host = (self.host_fetches).get_with(repo.registry.to_string(), || {
            Arc::new(tokio::sync::Semaphore::new(MAX_FETCHES_PER_HOST))
        });
        let closed = |_| FetchError::Refused("registry client is shutting down".into());
        let host = host.acquire_owned().await.map_err(closed)?;
        let turn = self.fetches.clone().acquire_owned().await.map_err(closed)?;
        let res = self.send(repo, &url, accept).await?;
        let status = res.status();
        if status == StatusCode::OK {
            return Ok(Some(Streaming {
                res,
                _turns: (host, turn),
            }));
        }
        let body = read_capped(res, MAX_ERROR_BYTES, &String::new)
            .await
            .unwrap_or_default();
        let envelope = serde_json::from_slice::<ErrorEnvelope>(&body).ok();
        let unknown = envelope
            .as_ref()
            .is_some_and(|e| (e.errors.iter()).any(|e| NOT_FOUND_CODES.contains(&e.code.as_str())));
        if status == StatusCode::NOT_FOUND || (status.is_client_error() && unknown) {
            return Ok(None);
        }
        let detail = match envelope.as_ref().and_then(|e| e.errors.first()) {
            Some(e) => format!(": {} {}", e.code, e.message),
            None => match String::from_utf8_lossy(&body).trim() {
                "" => String::new(),
                text => format!(": {}", text.chars().take(200).collect::<String>()),
            },
        };
        Err(FetchError::Status {
            url: url.to_string(),
            status,
            detail,
        })
    }

    fn url(&self, repo: &Repo<'_>, path: &str) -> Result<Url, FetchError> {
        // Docker Hub's references say `docker.io`; its registry answers elsewhere.
        let host = match repo.registry {
            "docker.io" => "registry-1.docker.io",
            h => h,
        };
        let scheme = if self.insecure.iter().any(|i| i == repo.registry) {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{host}/v2/{}/{path}", repo.repository);
        Url::parse(&url).map_err(|e| FetchError::Refused(format!("{url}: {e}")))
    }

    /// Sends the request with what the registry last accepted; on a 401, answers its
    /// challenge (Basic, or a token from its realm) and sends it once more.
    async fn send(
        &self,
        repo: &Repo<'_>,
        url: &Url,
        accept: Option<&str>,
    ) -> Result<Response, FetchError> {
        let out = Outgoing {
            method: reqwest::Method::GET,
            url,
            accept,
            content_type: None,
            body: None,
        };
        self.send_out(repo, &out).await
    }

    async fn send_out(&self, repo: &Repo<'_>, out: &Outgoing<'_>) -> Result<Response, FetchError> {
        // Credentials go to the registry only, never to a host an upload was sent on to.
        let ours = self.url(repo, "")?;
        let same_host = out.url.host_str() == ours.host_str()
            && out.url.port_or_known_default() == ours.port_or_known_default();
        if !same_host {
            return self.request(out, None).await;
        }
        let key = cache_key(repo);
        let known = match repo.auth {
            RegistryAuth::Bearer(t) => Some(bearer(t)?),
            _ => self.authorizations.get(&key).await.map(|a| a.header),
        };
        let res = self.request(out, known.as_ref()).await?;
        if res.status() != StatusCode::UNAUTHORIZED || matches!(repo.auth, RegistryAuth::Bearer(_))
        {
            return Ok(res);
        }
        if known.is_some() {
            self.authorizations.invalidate(&key).await;
        }
        let header = self.authorize(repo, out.url, res.headers(), key).await?;
        self.request(out, Some(&header)).await
    }

    async fn request(
        &self,
        out: &Outgoing<'_>,
        auth: Option<&HeaderValue>,
    ) -> Result<Response, FetchError> {
        let mut req = self.client.request(out.method.clone(), out.url.clone());
        if let Some(a) = out.accept {
            req = req.header(ACCEPT, a);
        }
        if let Some(t) = out.content_type {
            req = req.header(CONTENT_TYPE, t);
        }
        if let Some(b) = out.body {
            req = req.body(b.to_vec());
        }
        if let Some(h) = auth {
            req = req.header(AUTHORIZATION, h.clone());
        }
        req.send().await.map_err(|e| transport(out.url, e))
    }

    /// The URL of `path` under the repository (`blobs/uploads/`), or `location` (an upload's
    /// `Location`, absolute or relative to the registry).
    pub fn url_of(&self, repo: &Repo<'_>, location: &str) -> Result<Url, FetchError> {
        let base = self.url(repo, "")?;
        base.join(location)
            .map_err(|e| FetchError::Refused(format!("{location}: {e}")))
    }

    /// Sends a write (pushing: `HEAD`, `POST`, `PUT`) as the repository's pusher; the answer's
    /// status, headers and at most [`MAX_ERROR_BYTES`] of its body.
    pub async fn write(&self, repo: &Repo<'_>, out: &Outgoing<'_>) -> Result<Answer, FetchError> {
        let res = self.send_out(repo, out).await?;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = read_capped(res, MAX_ERROR_BYTES, &|| format!("answer of {}", out.url)).await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// What answers the registry's challenge: a token from its realm, or Basic credentials.
    async fn authorize(
        &self,
        repo: &Repo<'_>,
        url: &Url,
        headers: &HeaderMap,
        key: String,
    ) -> Result<HeaderValue, FetchError> {
        let refused =
            |why: String| FetchError::Refused(format!("GET {url}: 401 Unauthorized: {why}"));
        let mut challenges = Vec::new();
        for v in headers.get_all(WWW_AUTHENTICATE) {
            let v = v
                .to_str()
                .map_err(|_| refused("WWW-Authenticate is not text".into()))?;
            challenges.extend(
                parse_challenges(v).map_err(|e| refused(format!("WWW-Authenticate: {e}")))?,
            );
        }
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = (c.param("realm"))
                .ok_or_else(|| refused("Bearer challenge without a realm".into()))?;
            let token = self.token(repo, realm, c.param("service"));
            return (self.authorizations.try_get_with(key, token).await)
                .map(|a| a.header)
                .map_err(Arc::unwrap_or_clone);
        }
        if !challenges.iter().any(|c| c.scheme == "basic") {
            return Err(refused("no Basic or Bearer challenge".into()));
        }
        let RegistryAuth::Basic(user, password) = repo.auth else {
            return Err(refused(
                "the registry asks for credentials and has none".into(),
            ));
        };
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut header = HeaderValue::from_str(&format!("Basic {pair}"))
            .map_err(|_| refused("credentials a header cannot carry".into()))?;
        header.set_sensitive(true);
        let a = Authorization {
            header: header.clone(),
            ttl: BASIC_TTL,
        };
        self.authorizations.insert(key, a).await;
        Ok(header)
    }

    /// A pull token for the repository from the realm the registry named (Basic credentials,
    /// if any, go to the realm, never a token to the registry's choice of host).
    async fn token(
        &self,
        repo: &Repo<'_>,
        realm: &str,
        service: Option<&str>,
    ) -> Result<Authorization, FetchError> {
        let refused = |why: String| FetchError::Refused(format!("token realm {realm:?}: {why}"));
        let mut url = Url::parse(realm).map_err(|e| refused(e.to_string()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(refused("no host".into())),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.insecure.contains(&host) => {}
            _ => {
                return Err(refused(
                    "not HTTPS (plain HTTP only to insecureRegistries)".into(),
                ));
            }
        }
        if !self.allowed.allows(&host) {
            return Err(refused(format!("{host} is not in attestations.registries")));
        }
        let _ = (url.set_username(""), url.set_password(None));
        let access = if repo.push { "pull,push" } else { "pull" };
        (url.query_pairs_mut())
            .append_pair("scope", &format!("repository:{}:{access}", repo.repository));
        if let Some(s) = service {
            url.query_pairs_mut().append_pair("service", s);
        }
        let mut req = self.client.get(url.clone());
        if let RegistryAuth::Basic(user, password) = repo.auth {
            req = req.basic_auth(user, Some(password));
        }
        let res = req.send().await.map_err(|e| transport(&url, e))?;
        if res.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: res.status(),
                detail: String::new(),
            });
        }
        let body = read_capped(res, MAX_TOKEN_BYTES, &|| {
            format!("token response of {realm}")
        })
        .await?;
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("the answer is not a token: {e}")))?;
        let token = (t.token.or(t.access_token))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("the answer has no token".into()))?;
        Ok(Authorization {
            header: bearer(&token)?,
            ttl: t.expires_in.map_or(DEFAULT_TOKEN_TTL, Duration::from_secs),
        })
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// At most [`MAX_REDIRECTS`], never from HTTPS down to plain HTTP. reqwest itself drops
/// `Authorization` (and cookies) when a redirect changes host, port or scheme.
fn redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() != "https"
            && (attempt.previous().iter()).any(|u| u.scheme() == "https");
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if downgrade {
            attempt.error("a redirect from HTTPS to plain HTTP")
        } else {
            attempt.follow()
        }
    })
}

/// What a registry's answers are cached under: the registry, the repository, the credentials.
fn cache_key(repo: &Repo<'_>) -> String {
    let who = match repo.auth {
        RegistryAuth::Basic(u, p) => {
            let d = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                format!("{u}\0{p}").as_bytes(),
            );
            crate::attest::hex(d.as_ref())
        }
        _ => String::new(),
    };
    let access = if repo.push { "push" } else { "pull" };
    format!("{}/{}#{who}#{access}", repo.registry, repo.repository)
}

fn bearer(token: &str) -> Result<HeaderValue, FetchError> {
    let mut h = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| FetchError::Refused("a token a header cannot carry".into()))?;
    h.set_sensitive(true);
    Ok(h)
}

/// An error with its causes: reqwest's own message hides why a request failed.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn transport(url: &Url, e: reqwest::Error) -> FetchError {
    let message = if e.is_timeout() {
        "timed out".to_string()
    } else {
        chain(&e.without_url())
    };
    FetchError::Transport {
        url: url.to_string(),
        message,
    }
}

/// Reads a body, refusing it as soon as it is past `cap`: a declared length past the cap is
/// refused before a byte is read, and the count holds whatever length was declared.
pub(super) async fn read_capped(
    mut res: Response,
    cap: usize,
    what: &(dyn Fn() -> String + Sync),
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::TooLarge { what: what(), cap };
    let mut buf = Capped::new(cap, res.content_length()).ok_or_else(too_large)?;
    while let Some(chunk) = res.chunk().await.map_err(|e| transport(res.url(), e))? {
        if !buf.push(&chunk) {
            return Err(too_large());
        }
    }
    Ok(buf.buf)
}

/// A buffer that refuses to grow past its cap.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl Capped {
    /// `None` when the declared length is already past the cap.
    fn new(cap: usize, declared: Option<u64>) -> Option<Self> {
        if declared.is_some_and(|n| n > cap as u64) {
            return None;
        }
        let room = declared.map_or(0, |n| n as usize).min(MAX_PRESIZE);
        Some(Self {
            buf: Vec::with_capacity(room),
            cap,
        })
    }

    /// Appends `chunk`, or refuses it (keeping nothing of it) when it would pass the cap.
    fn push(&mut self, chunk: &[u8]) -> bool {
        if chunk.len() > self.cap - self.buf.len() {
            return false;
        }
        self.buf.extend_from_slice(chunk);
        true
    }
}

/// One `WWW-Authenticate` challenge: its scheme and parameters, names in lower case.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, name: &str) -> Option<&str> {
        (self.params.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A `WWW-Authenticate` value (RFC 9110 §11.6.1): challenges separated by commas, each a scheme
/// and `name=value` parameters whose value is a token or a quoted string. A parameter given
/// twice, an unterminated quoted string or a stray character is an error.
pub(super) fn parse_challenges(value: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        c.skip(b" \t,");
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token().ok_or_else(|| c.unexpected("an auth scheme"))?;
        if !matches!(c.peek(), None | Some(b' ' | b'\t' | b',')) {
            return Err(c.unexpected("a space after the scheme"));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        loop {
            let mark = c.i;
            c.skip(b" \t,");
            let Some(name) = c.token() else {
                if c.peek().is_none() {
                    break;
                }
                return Err(c.unexpected("a parameter"));
            };
            c.skip(b" \t");
            if c.peek() != Some(b'=') {
                // The next challenge's scheme.
                c.i = mark;
                break;
            }
            c.i += 1;
            c.skip(b" \t");
            let v = match c.peek() {
                Some(b'"') => c.quoted()?,
                _ => c
                    .token()
                    .ok_or_else(|| c.unexpected("a value"))?
                    .to_string(),
            };
            let name = name.to_ascii_lowercase();
            if params.iter().any(|(n, _)| *n == name) {
                return Err(format!("parameter {name} is given twice"));
            }
            params.push((name, v));
            c.skip(b" \t");
            if !matches!(c.peek(), None | Some(b',')) {
                return Err(c.unexpected("a comma"));
            }
        }
        out.push(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        });
    }
    if out.is_empty() {
        return Err("no challenge".into());
    }
    Ok(out)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, these: &[u8]) {
        while self.peek().is_some_and(|b| these.contains(&b)) {
            self.i += 1;
        }
    }

    /// An RFC 9110 token (`tchar`s), if one starts here.
    fn token(&mut self) -> Option<&'a str> {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let start = self.i;
        while self.peek().is_some_and(tchar) {
            self.i += 1;
        }
        // tchars are ASCII.
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default())
    }

    /// A quoted string starting here, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek().ok_or("unterminated quoted string")?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    out.push(self.peek().ok_or("unterminated quoted string")?);
                    self.i += 1;
                }
                b'\t' | 0x20..=0x7e | 0x80.. => out.push(b),
                _ => return Err("a control character in a quoted string".into()),
            }
        }
        String::from_utf8(out).map_err(|_| "a quoted string that is not UTF-8".into())
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.peek() {
            Some(b) => format!(
                "expected {wanted} at byte {}, found {:?}",
                self.i, b as char
            ),
            None => format!("expected {wanted} at the end"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: (params.iter())
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn challenges_parse_as_registries_send_them() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#;
        assert_eq!(
            parse_challenges(hub),
            Ok(vec![challenge(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/nginx:pull"),
                ]
            )])
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="test""#),
            Ok(vec![challenge("basic", &[("realm", "test")])])
        );
        // Several challenges, spaces around `=` and `,`, token values, escapes, any case.
        let many =
            r#"Basic Realm = "a \"b\" \\c" , charset=UTF-8, BEARER realm="r",scope=x  , Negotiate"#;
        assert_eq!(
            parse_challenges(many),
            Ok(vec![
                challenge("basic", &[("realm", r#"a "b" \c"#), ("charset", "UTF-8")]),
                challenge("bearer", &[("realm", "r"), ("scope", "x")]),
                challenge("negotiate", &[]),
            ])
        );
        let c = &parse_challenges(hub).unwrap()[0];
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("error"), None);
    }

    #[test]
    fn malformed_challenges_are_refused() {
        let cases = [
            ("", "no challenge"),
            (" , ", "no challenge"),
            (r#"Bearer realm="https://a"#, "unterminated"),
            (r#"Bearer realm="a\"#, "unterminated"),
            (r#"Bearer realm="a", realm="b""#, "realm is given twice"),
            (r#"Bearer realm="a" service="b""#, "expected a comma"),
            ("Bearer realm=", "expected a value at the end"),
            ("Bearer realm=,", "expected a value"),
            (r#""Bearer""#, "expected an auth scheme"),
            (r#"Bearer="x""#, "a space after the scheme"),
            ("Bearer realm=\"a\u{1}\"", "control character"),
            ("Bearer realm=@", "expected a value"),
        ];
        for (value, why) in cases {
            let e = parse_challenges(value).unwrap_err();
            assert!(e.contains(why), "{value:?}: {e}");
        }
    }

    #[test]
    fn a_capped_buffer_refuses_what_is_past_its_cap() {
        let mut b = Capped::new(8, None).unwrap();
        assert!(b.push(b"1234") && b.push(b"5678"));
        assert!(!b.push(b"9"));
        assert_eq!(b.buf, b"12345678");
        assert!(Capped::new(8, Some(8)).is_some());
        assert!(Capped::new(8, Some(9)).is_none());
        // The declared length is not trusted with memory either.
        let b = Capped::new(usize::MAX, Some(u64::MAX / 2)).unwrap();
        assert!(b.buf.capacity() <= MAX_PRESIZE);
    }

    fn response(body: &'static [u8]) -> Response {
        Response::from(http::Response::new(body))
    }

    #[tokio::test]
    async fn capped_reads_stop_at_the_cap() {
        let what = || "manifest of x".to_string();
        assert_eq!(
            read_capped(response(b"0123456789"), 10, &what).await,
            Ok(b"0123456789".to_vec())
        );
        assert_eq!(
            read_capped(response(b"0123456789"), 9, &what).await,
            Err(FetchError::TooLarge {
                what: "manifest of x".into(),
                cap: 9
            })
        );
        assert_eq!(
            read_capped(response(b"0123456789"), 9, &what)
                .await
                .unwrap_err()
                .to_string(),
            "manifest of x is larger than 9 bytes"
        );
    }
}
