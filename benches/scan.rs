//! `fipsgate scan` of a large image against reading its layers with the system's tools.
//!
//! Builds an image from this machine's own files (every k-th file of `/usr/bin`, `/usr/lib`,
//! `/usr/share` in path order, files up to 64 MiB): `SCAN_BENCH_MB` (default 1024) MiB uncompressed in
//! `SCAN_BENCH_LAYERS` (default 6) gzip layers (level 6, as `docker push` writes them), in an
//! OCI layout in a temporary directory. Then, twice each and alternating, times
//!
//! - the baseline: `gzip -dc LAYER | tar -t >/dev/null` for every layer, one after another;
//! - `fipsgate scan --oci-layout DIR:bench -o json` (the bench build), its peak RSS (VmHWM,
//!   polled every 10 ms) taken as it runs;
//!
//! and, when Debian's `docker-registry` is installed, `fipsgate scan` of the same image pushed
//! to a registry on loopback. Prints the throughput ratio (baseline time / fipsgate time;
//! target ≥ 0.5) and the peak RSS (target ≤ 256 MiB for 1 GB), and exits 1 on a missed
//! target: `cargo bench --bench scan`.

#[path = "../tests/integration/common/oci.rs"]
mod oci;
#[path = "../tests/integration/common/registry.rs"]
mod registry;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const MIB: f64 = 1024.0 * 1024.0;
const MAX_FILE: u64 = 64 << 20;
const RATIO_TARGET: f64 = 0.5;
const RSS_TARGET_MIB: f64 = 256.0;

/// A writer that hashes and counts what passes.
struct Hashing<W> {
    inner: W,
    ctx: aws_lc_rs::digest::Context,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A sample of the host's files (every k-th, in path order, so that binaries, libraries and
/// small data files all come in), `budget` bytes or just under.
fn host_files(budget: u64) -> Vec<(PathBuf, u64)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                walk(&p, out);
            } else if meta.is_file() && meta.len() <= MAX_FILE && File::open(&p).is_ok() {
                out.push((p, meta.len()));
            }
        }
    }
    let mut all = Vec::new();
    for d in ["/usr/bin", "/usr/lib", "/usr/share"] {
        walk(Path::new(d), &mut all);
    }
    let total: u64 = all.iter().map(|f| f.1).sum();
    let stride = (total / budget).max(1) as usize;
    let mut out: Vec<_> = all.into_iter().step_by(stride).collect();
    let mut sum: u64 = out.iter().map(|f| f.1).sum();
    while sum > budget {
        sum -= out.pop().map_or(0, |f| f.1);
    }
    out
}

/// Writes the layers (gzip blobs), config, manifest and index.json; returns the layer paths
/// and the total uncompressed bytes.
fn build(dir: &Path, files: &[(PathBuf, u64)], layers: usize) -> (Vec<PathBuf>, u64) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let total: u64 = files.iter().map(|f| f.1).sum();
    let per = total / layers as u64 + 1;
    let (mut descriptors, mut paths, mut raw) = (Vec::new(), Vec::new(), 0u64);
    let mut rest = files;
    for n in 0..layers {
        let mut size = 0;
        let take = rest.iter().take_while(|f| {
            size += f.1;
            size <= per || n == layers - 1
        });
        let chunk: Vec<_> = take.cloned().collect();
        rest = &rest[chunk.len()..];
        let tmp = blobs.join(format!("layer{n}.tmp"));
        let hashing = Hashing {
            inner: BufWriter::new(File::create(&tmp).unwrap()),
            ctx: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            n: 0,
        };
        let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        for (p, len) in &chunk {
            let name = p.strip_prefix("/").unwrap();
            if tar.append_path_with_name(p, name).is_ok() {
                raw += len;
            }
        }
        let mut hashing = tar.into_inner().unwrap().finish().unwrap();
        hashing.flush().unwrap();
        let hex: String = (hashing.ctx.finish().as_ref().iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = blobs.join(&hex);
        std::fs::rename(&tmp, &path).unwrap();
        descriptors.push(json!({"mediaType": oci::LAYER_GZIP, "digest": format!("sha256:{hex}"), "size": hashing.n}));
        paths.push(path);
    }
    let config =
        json!({"os": "linux", "architecture": "amd64", "config": {"Env": ["PATH=/usr/bin"]}})
            .to_string();
    let manifest = json!({"schemaVersion": 2, "mediaType": oci::MANIFEST,
        "config": {"mediaType": oci::CONFIG, "digest": oci::sha256(config.as_bytes()), "size": config.len()},
        "layers": descriptors})
    .to_string();
    for doc in [&config, &manifest] {
        let d = oci::sha256(doc.as_bytes());
        std::fs::write(blobs.join(d.strip_prefix("sha256:").unwrap()), doc).unwrap();
    }
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": oci::MANIFEST,
        "digest": oci::sha256(manifest.as_bytes()), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "bench"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    (paths, raw)
}

fn baseline(layers: &[PathBuf]) -> Duration {
    let start = Instant::now();
    for l in layers {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc '{}' | tar -t >/dev/null", l.display()))
            .status()
            .unwrap();
        assert!(status.success(), "gzip | tar failed on {}", l.display());
    }
    start.elapsed()
}

fn status_kib(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `fipsgate scan ARGS -o json`: (time, peak RSS in MiB, files scanned).
fn fipsgate(args: &[&str]) -> (Duration, f64, u64) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fipsgate"))
        .arg("scan")
        .args(args)
        .args(["-o", "json", "--date", "2026-06-01"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // VmHWM until the process exits (a zombie has no Vm lines).
    let poller = std::thread::spawn(move || {
        let mut peak = 0.0f64;
        while let Some(k) = status_kib(pid, "VmHWM:") {
            peak = peak.max(k);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut stdout = Vec::new();
    io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let elapsed = start.elapsed();
    let errors = errors.join().unwrap();
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "fipsgate scan failed: {errors}"
    );
    let peak = poller.join().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let files = doc["images"][0]["reports"][0]["filesScanned"]
        .as_u64()
        .unwrap_or(0);
    (elapsed, peak / 1024.0, files)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let mb = env_or("SCAN_BENCH_MB", 1024);
    let layers = env_or("SCAN_BENCH_LAYERS", 6) as usize;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let t = Instant::now();
    let files = host_files(mb << 20);
    let (blobs, raw) = build(&layout, &files, layers);
    let compressed: u64 = blobs.iter().map(|b| b.metadata().unwrap().len()).sum();
    println!(
        "image: {} files, {:.0} MiB uncompressed, {:.0} MiB in {} gzip layers (built in {:.1} s)",
        files.len(),
        raw as f64 / MIB,
        compressed as f64 / MIB,
        blobs.len(),
        t.elapsed().as_secs_f64()
    );
    let arg = format!("{}:bench", layout.display());
    let (mut base, mut scan, mut peak, mut scanned) = (Duration::MAX, Duration::MAX, 0.0f64, 0);
    for round in 1..=2 {
        let b = baseline(&blobs);
        let (s, p, n) = fipsgate(&["--oci-layout", &arg]);
        println!(
            "round {round}: gzip -dc | tar -t {:.2} s, fipsgate scan --oci-layout {:.2} s, peak RSS {p:.1} MiB",
            b.as_secs_f64(),
            s.as_secs_f64()
        );
        (base, scan, peak, scanned) = (base.min(b), scan.min(s), peak.max(p), n);
    }
    let ratio = base.as_secs_f64() / scan.as_secs_f64();
    println!(
        "best: baseline {:.2} s ({:.0} MB/s uncompressed), fipsgate {:.2} s ({:.0} MB/s), {scanned} files scanned",
        base.as_secs_f64(),
        raw as f64 / 1e6 / base.as_secs_f64(),
        scan.as_secs_f64(),
        raw as f64 / 1e6 / scan.as_secs_f64()
    );
    println!(
        "throughput ratio {ratio:.2} (target >= {RATIO_TARGET}); peak RSS {peak:.1} MiB (target <= {RSS_TARGET_MIB} MiB for 1 GB)"
    );
    let mut ok = ratio >= RATIO_TARGET && peak <= RSS_TARGET_MIB;
    if Path::new(registry::REGISTRY_BIN).exists() {
        ok &= from_registry(&layout, &blobs, base, raw);
    }
    if !ok {
        std::process::exit(1);
    }
}

/// The same image pushed to a registry on loopback, scanned from there.
fn from_registry(layout: &Path, blobs: &[PathBuf], base: Duration, raw: u64) -> bool {
    let reg = registry::TestRegistry::start_with(None, false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let read = |p: &Path| std::fs::read(p).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&read(&layout.join("index.json"))).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| {
        read(
            &layout
                .join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
        )
    };
    let manifest = blob(&manifest_digest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    rt.block_on(async {
        reg.push_blob("bench/app", &blob(m["config"]["digest"].as_str().unwrap()))
            .await;
        for b in blobs {
            reg.push_blob("bench/app", &read(b)).await;
        }
        reg.push_manifest("bench/app", "v1", oci::MANIFEST, &manifest)
            .await;
    });
    let image = format!("{}/bench/app:v1", reg.host);
    let (s, p, _) = fipsgate(&[&image, "--insecure-registry", &reg.host]);
    let ratio = base.as_secs_f64() / s.as_secs_f64();
    println!(
        "from a registry on loopback: {:.2} s ({:.0} MB/s), ratio {ratio:.2}, peak RSS {p:.1} MiB",
        s.as_secs_f64(),
        raw as f64 / 1e6 / s.as_secs_f64()
    );
    ratio >= RATIO_TARGET && p <= RSS_TARGET_MIB
}
