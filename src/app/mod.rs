//! Use cases and the ports they need: admission ([`admit`], [`relabel`]), `check`, `audit`,
//! `attest` (a scan report made into a signed statement's predicate),
//! `doctor` (facts `infra` gathered, judged), the chain of sources an image is assessed from,
//! the namespace policy store, and warming the registry cache after a start ([`warm`]). IO happens only through [`ports`], implemented in `infra`.

pub mod admit;
pub mod assess;
pub mod attest;
pub mod audit;
pub mod chain;
pub mod check;
pub mod doctor;
pub mod explain;
pub mod namespaces;
pub mod ports;
pub mod relabel;
pub mod scan_audit;
pub mod warm;

/// Today's date in UTC: what certificate sunsets are compared against. The one clock read the
/// pure engine's callers make.
pub fn today_utc() -> jiff::civil::Date {
    jiff::tz::Offset::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}
