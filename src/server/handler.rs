//! `POST /validate`: a thin handler. It reads the request ([`super::read`]), hands it to the
//! admission use case, counts and logs the outcome, and answers. Every input gets an
//! AdmissionReview or a JSON 4xx/503.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::admission::{Action, Parsed, ReviewResponse};
use crate::app::admit::{Admission, Admitted};
use crate::app::relabel::Disclosure;
use crate::domain::policy::Level;
use crate::engine::{Count, Decision, Exemption, Outcome, Subject};
use crate::telemetry::metrics::{
    DecisionLabel, KindLabel, LevelLabel, Metrics, ModeLabel, ObjectKind, Operation, RequestLabels,
    RunMode, ViolationLabels,
};

use super::read::{Limits, Read, Refusal, ValidateQuery, json_error, read};
use super::shares::Short;

/// What the admission handler needs.
pub struct AppState {
    pub admission: Admission,
    pub metrics: Metrics,
    pub limits: Limits,
    /// What relabel warnings may say about other pods: names only when callers are
    /// authenticated by client certificate.
    pub disclosure: Disclosure,
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
    let Read {
        req,
        deadline,
        held: _held,
    } = match read_request(&state, query, request, started).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    // The request's span exists only at debug: at info, formatting its fields when it is
    // created cost more than parsing the review. The line for a notable decision carries them.
    let span = tracing::debug_span!(
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
    // One line per request: denials and errors at info, the rest at debug.
    let notable = matches!(
        label,
        DecisionLabel::deny | DecisionLabel::would_deny | DecisionLabel::invalid
    );
    if notable {
        tracing::info!(
            uid = req.uid.as_str(),
            dry_run = req.dry_run,
            namespace = req.namespace.as_str(),
            object = req.name.as_str(),
            operation = req.operation.as_str(),
            decision = label_str(label),
            duration_ms = elapsed.as_secs_f64() * 1e3,
            "admission request"
        );
    } else if !span.is_disabled() {
        span.record("decision", label_str(label));
        span.record("duration_ms", elapsed.as_secs_f64() * 1e3);
        span.in_scope(|| tracing::debug!("admission request"));
    }
    review_response(&response)
}

/// The handler for `POST /mutate`: pod references whose evidence rests on a digest are
/// rewritten to carry it, so every node pulls what was verified. Never denies: judging is
/// `/validate`'s, which the API server calls after the mutation.
pub async fn mutate(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ValidateQuery>, QueryRejection>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let Read {
        req,
        deadline,
        held: _held,
    } = match read_request(&state, query, request, started).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let pins = match &req.action {
        Action::Evaluate {
            kind,
            spec,
            enforceable: true,
            previous,
        } if req.sub_resource.is_empty() => {
            let subject = Subject {
                kind,
                namespace: &req.namespace,
                name: &req.name,
                username: &req.username,
                enforceable: true,
                previous: previous.as_ref(),
            };
            state.admission.pins(&subject, spec, deadline).await
        }
        _ => Vec::new(),
    };
    if !pins.is_empty() {
        state.metrics.images_pinned.inc_by(pins.len() as u64);
        tracing::info!(uid = %req.uid, namespace = %req.namespace, images = pins.len(), "pinned to verified digests");
    }
    state
        .metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    review_response(&ReviewResponse::pinned(&req, &pins))
}

/// The request read within its limits; a refusal is counted, logged and answered.
async fn read_request(
    state: &AppState,
    query: Result<Query<ValidateQuery>, QueryRejection>,
    request: axum::extract::Request,
    started: Instant,
) -> Result<Read, Response> {
    let (parts, body) = request.into_parts();
    read(&state.limits, query, &parts, body, started)
        .await
        .map_err(|refusal| refused(&state.metrics, refusal, started))
}

/// A request refused before it could be decided: counted, logged, answered.
fn refused(metrics: &Metrics, refusal: Refusal, started: Instant) -> Response {
    if let Refusal::Overloaded(short) = refusal {
        metrics.error(match short {
            Short::Source => "source_overload",
            Short::Total => "overload",
        });
        tracing::warn!(reason = %refusal, "refused with 503");
    } else {
        metrics.error("bad_request");
        tracing::warn!(status = refusal.status().as_u16(), reason = %refusal, "rejected request");
    }
    metrics.duration.observe(started.elapsed().as_secs_f64());
    refusal.into_response()
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
            tracing::warn!(uid = req.uid.as_str(), namespace = req.namespace.as_str(), reason = %msg, "object cannot be read; denied");
            (ReviewResponse::invalid(req, msg), DecisionLabel::invalid)
        }
        Action::Evaluate {
            kind,
            spec,
            enforceable,
            previous,
        } => {
            let subject = Subject {
                kind,
                namespace: &req.namespace,
                name: &req.name,
                username: &req.username,
                enforceable: *enforceable,
                previous: previous.as_ref(),
            };
            let admitted = state.admission.admit(&subject, spec, deadline).await;
            answer(&state.metrics, req, admitted)
        }
        Action::NamespaceLabels {
            namespace,
            old,
            new,
        } => {
            let r = state
                .admission
                .relabel(
                    namespace,
                    &req.username,
                    old.as_ref(),
                    new,
                    deadline,
                    state.disclosure,
                )
                .await;
            if r.list_failed {
                state.metrics.error("pod_list");
            }
            if !r.loosened.is_empty() {
                tracing::warn!(namespace, loosened = %r.loosened.join("; "), "namespace policy lowered");
            }
            let response = ReviewResponse::relabelled(req, r.warnings, &r.loosened);
            (response, DecisionLabel::allow)
        }
    };
    let mode = if state.admission.rules.dry_run {
        RunMode::dry_run
    } else {
        RunMode::enforce
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            operation: Operation::from_request(&req.operation),
            kind: match &req.action {
                Action::Evaluate { kind, .. } => ObjectKind::from_kind(kind),
                Action::NamespaceLabels { .. } => ObjectKind::Namespace,
                Action::Skip(_) | Action::Invalid(_) => ObjectKind::other,
            },
            decision: label,
            mode,
        })
        .inc();
    (response, label)
}

/// An admission decision, counted and made into the API server's answer.
fn answer(metrics: &Metrics, req: &Parsed, a: Admitted) -> (ReviewResponse, DecisionLabel) {
    if a.namespace_failed {
        metrics.error("namespace_lookup");
    }
    if a.timed_out > 0 {
        metrics.error("timeout");
    }
    record(metrics, &a.decision);
    let label = match (a.decision.exemption, a.decision.outcome) {
        (Some(Exemption::Namespace | Exemption::User), _) => DecisionLabel::exempt,
        (_, Outcome::Allow) => DecisionLabel::allow,
        (_, Outcome::Deny) => DecisionLabel::deny,
        (_, Outcome::WouldDeny) => DecisionLabel::would_deny,
    };
    (
        ReviewResponse::from_decision(req, a.decision, &a.errors),
        label,
    )
}

/// Violations per mode and level, and exemptions.
fn record(m: &Metrics, d: &Decision) {
    let v = &d.violations;
    for (mode, count) in [
        (ModeLabel::enforce, v.enforce),
        (ModeLabel::warn, v.warn),
        (ModeLabel::audit, v.audit),
    ] {
        let Count { level, containers } = count;
        let level = match level {
            Level::Strict => LevelLabel::strict,
            Level::Baseline => LevelLabel::baseline,
            Level::Off => continue,
        };
        if containers > 0 {
            m.violations
                .get_or_create(&ViolationLabels { mode, level })
                .inc_by(containers as u64);
        }
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
