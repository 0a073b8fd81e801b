#![no_main]
//! Image references: parse never panics; a parsed reference re-parses to itself.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(r) = fipsgate::domain::image::ImageRef::parse(s)
    {
        let again = fipsgate::domain::image::ImageRef::parse(&r.to_string()).expect("normal form parses");
        assert_eq!(r, again);
    }
});
