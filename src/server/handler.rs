//! `POST /validate`: reads the review, looks up what the decision needs within the request's
//! deadline, asks the engine, answers. Every input gets an AdmissionReview or a JSON 4xx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::admission::{self, Action, Parsed, ReviewResponse};
use crate::app::inventory::PodLister;
use crate::app::namespaces::NamespaceStore;
use crate::domain::assessment::{AttestationResult, AttestationSource, LookupContext};
use crate::domain::image::ImageRef;
use crate::domain::policy::{Level, Mode};
use crate::engine::{self, Exemption, Outcome, Resolution, Rules, Subject};
use crate::telemetry::metrics::{
    DecisionLabel, KindLabel, LevelLabel, Metrics, ModeLabel, Operation, RequestLabels, RunMode,
    ViolationLabels,
};

/// The API server's default webhook timeout, used when a request carries none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The reason given when look-ups outlive the request's budget.
pub const TIMEOUT_REASON: &str = "attestation lookup timed out";

/// What the admission handler needs.
pub struct AppState {
    pub rules: Rules,
    pub source: Arc<dyn AttestationSource>,
    pub namespaces: Arc<NamespaceStore>,
    pub metrics: Metrics,
    /// Lists a namespace's pods when its enforce level tightens; `None` without a cluster.
    pub pods: Option<Arc<dyn PodLister>>,
    pub limits: Limits,
}

/// Bounds on what one request may take.
pub struct Limits {
    pub max_body_bytes: usize,
    /// A body not received within this long is refused (slow uploads cannot hold a slot).
    pub body_read_timeout: Duration,
    /// Requests being decided at once; the excess is refused at once with 503.
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

impl Limits {
    pub fn new(max_body_bytes: usize, body_read_timeout: Duration, max_in_flight: usize) -> Self {
        Self {
            max_body_bytes,
            body_read_timeout,
            in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
        }
    }
}

/// A tightened namespace gets at most this many pods checked, within this long.
pub const RELABEL_MAX_PODS: usize = 3000;
pub const RELABEL_MAX_TIME: Duration = Duration::from_secs(1);
/// At most this many pods are named in warnings.
const RELABEL_MAX_WARNINGS: usize = 10;

#[derive(Deserialize)]
pub struct ValidateQuery {
    timeout: Option<String>,
}

/// How long fipsgate may work on a request that allows `timeout`: the answer must reach the
/// API server before it gives up, so the budget ends well before (a fifth, at least 250 ms).
pub fn budget(timeout: Duration) -> Duration {
    let timeout = timeout.clamp(Duration::from_secs(1), Duration::from_secs(30));
    timeout
        .saturating_sub((timeout / 5).max(Duration::from_millis(250)))
        .max(Duration::from_millis(100))
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn review_response(r: &ReviewResponse) -> Response {
    match serde_json::to_vec(r) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        // Serialising plain strings and maps cannot fail; answer something valid regardless.
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The handler for `POST /validate`.
pub async fn validate(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ValidateQuery>, QueryRejection>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Read {
        req,
        deadline,
        _slot,
    } = match read(&state, query, &parts.headers, body, started).await {
        Ok(read) => read,
        Err(response) => {
            state
                .metrics
                .duration
                .observe(started.elapsed().as_secs_f64());
            return response;
        }
    };
    // Created once the request is read, with its fields at once: the text and JSON formatters
    // render span fields eagerly, per field recorded, on every request.
    let span = tracing::info_span!(
        "admission",
        uid = req.uid.as_str(),
        dry_run = req.dry_run,
        namespace = req.namespace.as_str(),
        object = req.name.as_str(),
        operation = req.operation.as_str(),
        decision = Empty,
        duration_ms = Empty,
    );
    let (response, label) = decide(&state, &req, deadline)
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    state.metrics.duration.observe(elapsed.as_secs_f64());
    // One line per request: denials and errors at info, the rest at debug (the hot path, where
    // the closing fields are recorded only when the line is written).
    let notable = matches!(
        label,
        DecisionLabel::deny | DecisionLabel::would_deny | DecisionLabel::invalid
    );
    if notable || tracing::enabled!(tracing::Level::DEBUG) {
        span.record("decision", label_str(label));
        span.record("duration_ms", elapsed.as_secs_f64() * 1e3);
        span.in_scope(|| {
            if notable {
                tracing::info!("admission request");
            } else {
                tracing::debug!("admission request");
            }
        });
    }
    review_response(&response)
}

/// A request read and parsed, holding its decision slot.
struct Read {
    req: Parsed,
    deadline: tokio::time::Instant,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Reads and parses the request within its limits; a refusal is the finished response.
async fn read(
    state: &AppState,
    query: Result<Query<ValidateQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: axum::body::Body,
    started: Instant,
) -> Result<Read, Response> {
    let bad = |status: StatusCode, msg: String| {
        state.metrics.error("bad_request");
        tracing::warn!(status = status.as_u16(), reason = %msg, "rejected request");
        json_error(status, &msg)
    };
    let limits = &state.limits;
    let read = axum::body::to_bytes(body, limits.max_body_bytes);
    let body: Bytes = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if e.to_string().contains("length limit") => {
            return Err(bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body is over the length limit of {} bytes",
                    limits.max_body_bytes
                ),
            ));
        }
        Ok(Err(e)) => {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                format!("cannot read body: {e}"),
            ));
        }
        Err(_) => {
            return Err(bad(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "body not received within {} ms",
                    limits.body_read_timeout.as_millis()
                ),
            ));
        }
    };
    // Taken after the body is in: slow uploads cannot hold decision slots.
    let Ok(permit) = limits.in_flight.clone().try_acquire_owned() else {
        state.metrics.error("overload");
        tracing::warn!("too many admission requests in flight; refused with 503");
        let mut r = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many admission requests in flight; retry",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return Err(r);
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return Err(bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type must be application/json, got {content_type:?}"),
        ));
    }
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                format!("query: {}", e.body_text()),
            ));
        }
    };
    let timeout = match query.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(t) => match admission::parse_duration(t) {
            Ok(d) => d,
            Err(e) => return Err(bad(StatusCode::BAD_REQUEST, format!("timeout: {e}"))),
        },
    };
    let deadline = tokio::time::Instant::from_std(started + budget(timeout));
    match admission::parse(&body) {
        Ok(req) => Ok(Read {
            req,
            deadline,
            _slot: permit,
        }),
        Err(e) => Err(bad(StatusCode::BAD_REQUEST, e.0)),
    }
}

/// Decides a parsed request: the answer and its metric label.
async fn decide(
    state: &AppState,
    req: &Parsed,
    deadline: tokio::time::Instant,
) -> (ReviewResponse, DecisionLabel) {
    let (response, label) = match &req.action {
        Action::Skip(why) => {
            tracing::debug!(reason = why, "allowed without evaluation");
            (ReviewResponse::allow(req), DecisionLabel::skip)
        }
        Action::Invalid(msg) => {
            state.metrics.error("invalid_object");
            tracing::warn!(reason = %msg, "object cannot be read; denied");
            (ReviewResponse::invalid(req, msg), DecisionLabel::invalid)
        }
        Action::Evaluate {
            kind,
            spec,
            enforceable,
        } => evaluate(state, req, kind, spec, *enforceable, deadline).await,
        Action::NamespaceLabels {
            namespace,
            old,
            new,
        } => (
            relabel(state, req, namespace, old.as_ref(), new, deadline).await,
            DecisionLabel::allow,
        ),
    };
    let mode = if state.rules.dry_run {
        RunMode::dry_run
    } else {
        RunMode::enforce
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            operation: Operation::from_request(&req.operation),
            decision: label,
            mode,
        })
        .inc();
    (response, label)
}

async fn evaluate(
    state: &AppState,
    req: &Parsed,
    kind: &str,
    spec: &crate::domain::workload::PodSpec,
    enforceable: bool,
    deadline: tokio::time::Instant,
) -> (ReviewResponse, DecisionLabel) {
    let rules = &state.rules;
    let exempt = rules.exemption(&req.namespace, &req.username);
    let policy_lookup = tokio::time::timeout_at(deadline, state.namespaces.policy(&req.namespace));
    let (policy, ns_error) = match policy_lookup.await {
        Ok((p, _, err)) => (p, err),
        Err(_) => (
            Arc::new(crate::domain::policy::NamespacePolicy::defaults(
                &rules.defaults,
            )),
            Some("namespace lookup timed out".into()),
        ),
    };
    let mut timed_out = 0;
    let mut resolutions = Vec::new();
    if exempt.is_none() {
        // Images known without IO (the catalogue, a chain that never reaches a registry) are
        // resolved in place; only the rest get a future, the deadline and the look-up context.
        let mut later = Vec::new();
        for (i, (_, c)) in spec.all().enumerate() {
            match resolve_now(rules, &*state.source, &c.image) {
                Ok(r) => resolutions.push(r),
                Err(image) => {
                    resolutions.push(Resolution::Exempt);
                    later.push((i, image));
                }
            }
        }
        if !later.is_empty() {
            let ctx = LookupContext {
                namespace: req.namespace.clone(),
                pull_secrets: spec
                    .image_pull_secrets
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
            };
            let lookups = later
                .iter()
                .map(|(_, image)| resolve_later(&*state.source, image, &ctx, deadline));
            let out = futures::future::join_all(lookups).await;
            for ((i, _), (r, late)) in later.iter().zip(out) {
                timed_out += usize::from(late);
                resolutions[*i] = r;
            }
        }
    }
    let subject = Subject {
        kind,
        namespace: &req.namespace,
        name: &req.name,
        username: &req.username,
        enforceable,
    };
    let today = crate::today_utc();
    let mut d = engine::evaluate(rules, &subject, spec, &resolutions, &policy, today);

    let mut errors = Vec::new();
    if let Some(e) = ns_error {
        state.metrics.error("namespace_lookup");
        tracing::warn!(error = %e, "namespace policy unavailable; defaults applied");
        d.warnings.push(format!(
            "namespace policy unavailable, defaults applied: {e}"
        ));
        errors.push(e);
    }
    if timed_out > 0 {
        state.metrics.error("timeout");
        tracing::warn!(images = timed_out, "attestation look-ups timed out");
        errors.push(format!("{TIMEOUT_REASON} for {timed_out} image(s)"));
    }
    if !errors.is_empty() {
        let entry = d.audit_annotations.entry("error").or_default();
        for e in errors {
            if !entry.is_empty() {
                entry.push_str("; ");
            }
            entry.push_str(&e);
        }
    }
    record_metrics(&state.metrics, &d);
    let label = match (d.exemption, d.outcome) {
        (Some(Exemption::Namespace | Exemption::User), _) => DecisionLabel::exempt,
        (_, Outcome::Allow) => DecisionLabel::allow,
        (_, Outcome::Deny) => DecisionLabel::deny,
        (_, Outcome::WouldDeny) => DecisionLabel::would_deny,
    };
    (ReviewResponse::from_decision(req, d), label)
}

/// A namespace created or relabelled: allowed, with warnings naming existing pods that a
/// stricter enforce level would deny (bounded in pods and time; one pod per owner first).
async fn relabel(
    state: &AppState,
    req: &Parsed,
    namespace: &str,
    old: Option<&std::collections::BTreeMap<String, String>>,
    new: &std::collections::BTreeMap<String, String>,
    deadline: tokio::time::Instant,
) -> ReviewResponse {
    use crate::domain::policy::NamespacePolicy;
    let rules = &state.rules;
    let policy_of = |m: &std::collections::BTreeMap<String, String>| {
        NamespacePolicy::from_labels(
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &rules.defaults,
        )
    };
    let new_policy = policy_of(new);
    let old_enforce = old.map_or(rules.defaults.enforce, |o| policy_of(o).levels.enforce);
    let mut resp = ReviewResponse::allow(req);
    resp.response.warnings = new_policy.errors.clone();
    let enforce = new_policy.levels.enforce;
    let (Some(pods), true) = (&state.pods, enforce > old_enforce) else {
        return resp;
    };
    if rules.exemption(namespace, "").is_some() {
        return resp;
    }
    let stop = std::cmp::min(deadline, tokio::time::Instant::now() + RELABEL_MAX_TIME);
    let listed = match tokio::time::timeout_at(stop, pods.pods(namespace, RELABEL_MAX_PODS)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            state.metrics.error("pod_list");
            resp.response
                .warnings
                .push(format!("existing pods not checked: {e}"));
            return resp;
        }
        Err(_) => {
            resp.response
                .warnings
                .push("existing pods not checked: listing timed out".into());
            return resp;
        }
    };
    let (pods, more) = listed;
    let total = pods.len();
    let only_enforce = NamespacePolicy {
        levels: crate::domain::policy::Levels {
            enforce,
            warn: Level::Off,
            audit: Level::Off,
        },
        errors: Vec::new(),
    };
    let today = crate::today_utc();
    let ctx = LookupContext {
        namespace: namespace.to_string(),
        pull_secrets: Vec::new(),
    };
    let (mut checked, mut denied, mut lines) = (0, 0, Vec::new());
    for pod in crate::app::inventory::one_per_owner_first(pods) {
        if tokio::time::Instant::now() >= stop {
            break;
        }
        let mut res = Vec::with_capacity(pod.spec.len());
        for (_, c) in pod.spec.all() {
            res.push(resolve(rules, &*state.source, &c.image, &ctx, stop).await.0);
        }
        checked += 1;
        let subject = Subject {
            kind: "Pod",
            namespace,
            name: &pod.name,
            username: "",
            enforceable: true,
        };
        let d = engine::evaluate(rules, &subject, &pod.spec, &res, &only_enforce, today);
        if d.message.is_some() {
            denied += 1;
            if lines.len() < RELABEL_MAX_WARNINGS {
                let why: Vec<String> = d
                    .findings
                    .iter()
                    .filter(|f| f.verdict == engine::Verdict::Denied)
                    .map(|f| format!("{} ({})", f.container, f.image))
                    .collect();
                lines.push(format!(
                    "existing pod {:?} would be denied under enforce={enforce}: {}",
                    pod.name,
                    why.join(", ")
                ));
            }
        }
    }
    let w = &mut resp.response.warnings;
    w.extend(lines);
    if denied > RELABEL_MAX_WARNINGS {
        w.push(format!(
            "… and {} more pods would be denied",
            denied - RELABEL_MAX_WARNINGS
        ));
    }
    if checked < total || more {
        w.push(format!(
            "checked {checked} of {}{} existing pods before the limit ({} pods, {} ms)",
            total,
            if more { "+" } else { "" },
            RELABEL_MAX_PODS,
            RELABEL_MAX_TIME.as_millis()
        ));
    }
    resp
}

/// Resolves one image before `deadline`; the flag says it timed out.
async fn resolve(
    rules: &Rules,
    source: &dyn AttestationSource,
    image: &str,
    ctx: &LookupContext,
    deadline: tokio::time::Instant,
) -> (Resolution, bool) {
    match resolve_now(rules, source, image) {
        Ok(r) => (r, false),
        Err(image) => resolve_later(source, &image, ctx, deadline).await,
    }
}

/// The image's resolution when it needs no IO; otherwise its parsed reference.
fn resolve_now(
    rules: &Rules,
    source: &dyn AttestationSource,
    image: &str,
) -> Result<Resolution, ImageRef> {
    match ImageRef::parse(image) {
        Err(e) => Ok(Resolution::Invalid(e)),
        Ok(r) if rules.image_exempt(&r) => Ok(Resolution::Exempt),
        Ok(r) => match source.attest_now(&r) {
            Some(result) => Ok(Resolution::Result(result)),
            None => Err(r),
        },
    }
}

/// Asks the source before `deadline`; the flag says the look-up timed out.
async fn resolve_later(
    source: &dyn AttestationSource,
    image: &ImageRef,
    ctx: &LookupContext,
    deadline: tokio::time::Instant,
) -> (Resolution, bool) {
    match tokio::time::timeout_at(deadline, source.attest(image, ctx)).await {
        Ok(result) => (Resolution::Result(result), false),
        Err(_) => (
            Resolution::Result(AttestationResult::unknown(TIMEOUT_REASON)),
            true,
        ),
    }
}

fn record_metrics(m: &Metrics, d: &engine::Decision) {
    for &(mode, level, n) in &d.violations {
        let level = match level {
            Level::Strict => LevelLabel::strict,
            Level::Baseline => LevelLabel::baseline,
            Level::Off => continue,
        };
        if n == 0 {
            continue;
        }
        let mode = match mode {
            Mode::Enforce => ModeLabel::enforce,
            Mode::Warn => ModeLabel::warn,
            Mode::Audit => ModeLabel::audit,
        };
        m.violations
            .get_or_create(&ViolationLabels { mode, level })
            .inc_by(n as u64);
    }
    if let Some(e) = d.exemption {
        m.exemptions
            .get_or_create(&KindLabel { kind: e.as_str() })
            .inc();
    }
}

fn label_str(l: DecisionLabel) -> &'static str {
    match l {
        DecisionLabel::allow => "allow",
        DecisionLabel::deny => "deny",
        DecisionLabel::would_deny => "would-deny",
        DecisionLabel::exempt => "exempt",
        DecisionLabel::skip => "skip",
        DecisionLabel::invalid => "invalid",
    }
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
}
