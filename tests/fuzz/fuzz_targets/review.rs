#![no_main]
//! AdmissionReview bodies: parsing never panics, and whatever is read can be answered.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = fipsgate::admission::parse(data) {
        let r = fipsgate::admission::ReviewResponse::allow(&p);
        serde_json::to_vec(&r).expect("a response serialises");
    }
});
