//! Reading an AdmissionReview into what fipsgate must decide.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::workload::Object;

use super::route::route;
use super::{Parsed, V1, V1BETA1};

/// A review whose objects are read as `O`: typed [`Object`]s on the fast path (one pass over
/// the body), raw JSON when that fails, to say precisely what is wrong with the object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Review<O> {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request<O>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Request<O> {
    #[serde(default)]
    pub(super) uid: String,
    #[serde(default)]
    pub(super) kind: GroupVersionKind,
    #[serde(default)]
    pub(super) sub_resource: String,
    #[serde(default)]
    pub(super) namespace: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) operation: String,
    #[serde(default)]
    pub(super) user_info: UserInfo,
    pub(super) object: Option<O>,
    pub(super) old_object: Option<O>,
    #[serde(default)]
    pub(super) dry_run: Option<bool>,
}

/// How a request's object becomes an [`Object`].
pub(super) trait IntoObject {
    fn into_object(self, field: &str) -> Result<Object, String>;
}

impl IntoObject for Object {
    fn into_object(self, _: &str) -> Result<Object, String> {
        Ok(self)
    }
}

impl IntoObject for &RawValue {
    fn into_object(self, field: &str) -> Result<Object, String> {
        serde_json::from_str(self.get()).map_err(|e| format!("{field} is not a valid pod: {e}"))
    }
}

pub(super) fn take<O: IntoObject>(o: Option<O>, field: &str) -> Result<Object, String> {
    o.ok_or_else(|| format!("request has no {field}"))?
        .into_object(field)
}

#[derive(Default, Deserialize)]
pub(super) struct GroupVersionKind {
    #[serde(default)]
    pub(super) group: String,
    #[serde(default)]
    pub(super) kind: String,
}

#[derive(Default, Deserialize)]
pub(super) struct UserInfo {
    #[serde(default)]
    pub(super) username: String,
}

/// A review that cannot be answered with an AdmissionReview (no uid, not a review at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unanswerable(pub String);

/// Parses a review body. `Err` only when no uid can be found to answer to.
pub fn parse(body: &[u8]) -> Result<Parsed, Unanswerable> {
    // serde_json skips what the decision never reads (managedFields, annotations) about 15%
    // faster in text already checked as UTF-8 (std checks it in a fraction of that).
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<Review<Object>>(text),
        Err(_) => serde_json::from_slice::<Review<Object>>(body),
    };
    if let Ok(review) = parsed {
        return finish(review);
    }
    match serde_json::from_slice::<Review<&RawValue>>(body) {
        Ok(review) => finish(review),
        Err(e) => Err(salvage(body, &e)),
    }
}

fn finish<O: IntoObject>(review: Review<O>) -> Result<Parsed, Unanswerable> {
    let api_version = match review.api_version.as_str() {
        V1 => V1,
        V1BETA1 => V1BETA1,
        "" => return Err(Unanswerable("AdmissionReview has no apiVersion".into())),
        other => {
            return Err(Unanswerable(format!(
                "unsupported apiVersion {other:?} (want {V1} or {V1BETA1})"
            )));
        }
    };
    if review.kind != "AdmissionReview" {
        return Err(Unanswerable(format!(
            "kind is {:?}, not AdmissionReview",
            review.kind
        )));
    }
    let mut req = review
        .request
        .ok_or_else(|| Unanswerable("AdmissionReview has no request".into()))?;
    if req.uid.is_empty() {
        return Err(Unanswerable("AdmissionReview request has no uid".into()));
    }
    let action = route(&mut req);
    Ok(Parsed {
        api_version,
        uid: req.uid,
        operation: req.operation,
        namespace: req.namespace,
        name: req.name,
        username: req.user_info.username,
        sub_resource: req.sub_resource,
        dry_run: req.dry_run.unwrap_or(false),
        action,
    })
}

/// After a parse error: is there still a uid to answer, so the API server gets a review back?
/// Read without building anything: a failing body is never parsed into a tree (a `Value` costs
/// many times the body's size).
fn salvage(body: &[u8], err: &serde_json::Error) -> Unanswerable {
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // JSON is UTF-8 (skipping strings does not check it).
    let json = std::str::from_utf8(body)
        .map_err(|_| ())
        .and_then(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| ()));
    Unanswerable(match json {
        Err(_) => format!("body is not valid JSON: {err}"),
        Ok(_) if !object => "body is not a JSON object".into(),
        Ok(_) => format!("malformed AdmissionReview: {err}"),
    })
}
