//! The one classify path of admission, `check` and `audit`: parse the image and apply the
//! image exemptions ([`Rules::triage`]), then ask the source: in place when it knows without IO,
//! else within the request's deadline.

use tokio::time::Instant;

use crate::app::ports::{AssessmentSource, LookupContext};
use crate::catalog::Catalog;
use crate::domain::assessment::Assessment;
use crate::domain::image::ImageRef;
use crate::engine::{Classification, Rules, Triage};

/// The reason given when look-ups outlive the request's budget.
pub const TIMEOUT_REASON: &str = "attestation lookup timed out";

/// One container's image, classified now or waiting for a look-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    Ready(Classification),
    /// The source needs IO for this reference.
    Lookup(ImageRef),
}

/// Classifies an image without IO where possible: invalid, exempt (on `today`), or known to
/// the source.
pub fn classify_now(
    rules: &Rules,
    source: &dyn AssessmentSource,
    image: &str,
    today: jiff::civil::Date,
) -> Pending {
    match rules.triage(image, today) {
        Triage::Known(c) => Pending::Ready(c),
        Triage::Assess(r) => match source.assess_now(&r) {
            Some(a) => Pending::Ready(Classification::Assessed(a)),
            None => Pending::Lookup(r),
        },
    }
}

/// The classification from the catalogue alone (`check`, benchmarks): no IO, never pending.
pub fn classify_offline(
    rules: &Rules,
    catalog: &Catalog,
    image: &str,
    today: jiff::civil::Date,
) -> Classification {
    match rules.triage(image, today) {
        Triage::Known(c) => c,
        Triage::Assess(r) => Classification::Assessed(catalog.lookup(&r)),
    }
}

/// Asks the source before `deadline` (none: as long as it takes); the flag says it timed out.
pub async fn look_up(
    source: &dyn AssessmentSource,
    image: &ImageRef,
    ctx: &LookupContext,
    deadline: Option<Instant>,
) -> (Classification, bool) {
    let assessed = match deadline {
        Some(d) => tokio::time::timeout_at(d, source.assess(image, ctx))
            .await
            .ok(),
        None => Some(source.assess(image, ctx).await),
    };
    match assessed {
        Some(a) => (Classification::Assessed(a), false),
        None => (
            Classification::Assessed(Assessment::unknown(TIMEOUT_REASON)),
            true,
        ),
    }
}

/// [`classify_now`], then [`look_up`] when the source needs IO.
pub async fn classify(
    rules: &Rules,
    source: &dyn AssessmentSource,
    image: &str,
    ctx: &LookupContext,
    deadline: Option<Instant>,
    today: jiff::civil::Date,
) -> (Classification, bool) {
    match classify_now(rules, source, image, today) {
        Pending::Ready(c) => (c, false),
        Pending::Lookup(r) => look_up(source, &r, ctx, deadline).await,
    }
}
