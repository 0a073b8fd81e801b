#![no_main]
//! Configuration text: accepted or refused with a reason, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = fipsgate::config::Config::parse(&text, "fuzz.yaml") {
        let _ = c.rules();
    }
});
