//! The end-to-end suite (tests/e2e/run.sh: a real kube-apiserver, fipsgate registered from
//! deploy/) as an ignored test: `cargo test --test integration e2e -- --ignored` (root, Debian).

use std::process::Command;

#[test]
#[ignore = "needs a real kube-apiserver: run tests/run.sh or tests/e2e/run.sh"]
fn e2e_suite() {
    let dir = env!("CARGO_MANIFEST_DIR");
    // Output is inherited, so the suite's PASS/FAIL lines stream as they happen.
    let status = Command::new("bash")
        .arg("tests/e2e/run.sh")
        .current_dir(dir)
        .env("FIPSGATE_BIN", env!("CARGO_BIN_EXE_fipsgate"))
        .status()
        .expect("cannot start bash tests/e2e/run.sh");
    assert!(status.success(), "tests/e2e/run.sh failed: {status}");
}
