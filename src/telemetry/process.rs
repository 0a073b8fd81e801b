//! The process and its build: build info, certificate expiry, and CPU, memory and open files
//! read from `/proc` when `/metrics` is scraped.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    /// `true` in a build with the FIPS module.
    pub fips: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabels {
    /// `serving` (the webhook's), or `client_ca` (the CA of `--client-ca`).
    pub certificate: &'static str,
}

/// Process and build metrics.
#[derive(Clone, Default)]
pub struct Ops {
    pub build_info: Family<BuildLabels, Gauge>,
    pub certificate_expiry: Family<CertificateLabels, Gauge>,
    cpu: Counter<f64, AtomicU64>,
    cpu_seen: Arc<Mutex<f64>>,
    rss: Gauge,
    fds: Gauge,
    start: Gauge,
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, fixed in the kernel's user ABI).
const USER_HZ: f64 = 100.0;

impl Ops {
    pub fn register(registry: &mut Registry) -> Self {
        let o = Self::default();
        registry.register(
            "fipsgate_build_info",
            "1, labelled with the version and whether the build has the FIPS module",
            o.build_info.clone(),
        );
        registry.register(
            "fipsgate_certificate_expiry_timestamp_seconds",
            "When a certificate fipsgate serves with or trusts expires (Unix time)",
            o.certificate_expiry.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time of the process",
            o.cpu.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            o.rss.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors of the process",
            o.fds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "When the process started (Unix time)",
            o.start.clone(),
        );
        o
    }

    /// Reads CPU, memory, open files and start time from `/proc` (nothing off Linux).
    pub fn refresh(&self) {
        if let Some((cpu, start_ticks)) = stat() {
            let mut seen = self.cpu_seen.lock().unwrap_or_else(|e| e.into_inner());
            if cpu > *seen {
                self.cpu.inc_by(cpu - *seen);
                *seen = cpu;
            }
            if let Some(boot) = boot_time() {
                self.start.set(boot + (start_ticks / USER_HZ) as i64);
            }
        }
        if let Some(kib) = status_kib("VmRSS:") {
            self.rss.set(kib * 1024);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.fds.set(fds.count() as i64);
        }
    }
}

/// CPU seconds (user + system) and the start time in ticks after boot, from `/proc/self/stat`.
fn stat() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may hold spaces: fields count after its end.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // After the name: state is field 3, utime 14, stime 15, starttime 22 (1-based).
    Some(((num(11)? + num(12)?) / USER_HZ, num(19)?))
}

fn boot_time() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn status_kib(field: &str) -> Option<i64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reads_itself() {
        let mut registry = Registry::default();
        let ops = Ops::register(&mut registry);
        // Burn a little CPU so that the counter has something to count.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        ops.refresh();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let value = |name: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(name)).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes ") > 1e6, "{text}");
        assert!(value("process_open_fds ") >= 3.0, "{text}");
        let now = jiff::Timestamp::now().as_second() as f64;
        let start = value("process_start_time_seconds ");
        assert!(
            start > now - 86_400.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
        assert!(value("process_cpu_seconds_total ") > 0.0, "{text}");
    }
}
