#![no_main]
//! Catalogue files: parsed and compiled, or refused whole; matching never panics.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(f) = fipsgate::config::yaml::from_str::<fipsgate::catalog::CatalogFile>(&text, "fuzz.yaml")
        && let Ok(c) = fipsgate::catalog::Catalog::build(vec![("fuzz.yaml".into(), f)])
    {
        let img = fipsgate::domain::image::ImageRef::parse("gcr.io/spectro-images-fips/coredns:v1").unwrap();
        let _ = c.lookup(&img);
    }
});
