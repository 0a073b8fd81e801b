//! `audit --scan`: the distinct images an audit saw, each pinned to the digest its pods run
//! when the cluster reports one, scanned through the [`ImageScanner`] port a few at a time, so
//! an operator sees which workloads would pass `evidence.minimum: scan` before requiring it.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::app::ports::{ImageScanner, Listed, LookupContext, ScanResult, ScanTarget};
use crate::domain::fips::Status;
use crate::domain::image::{Digest, ImageRef};
use crate::scan::{ErrorName, Verdict};

/// Objects named per image; the rest are counted.
pub const MAX_NAMED: usize = 5;
/// Problems kept per image (the first by platform and path); the rest are counted.
pub const MAX_PROBLEMS: usize = 20;

/// The images to scan, by reference, with who runs them.
#[derive(Debug, Default)]
pub struct ScanPlan {
    targets: BTreeMap<String, Users>,
}

#[derive(Debug)]
struct Users {
    /// The first object's namespace and pull secrets: what the registry is asked with.
    context: LookupContext,
    objects: usize,
    named: Vec<String>,
}

impl ScanPlan {
    /// Adds the images of one audited object (each object counted once per image).
    pub fn add(&mut self, obj: &Listed) {
        let mut seen = Vec::new();
        for (_, c) in obj.spec.all() {
            let reference = pinned(&c.image, obj.image_ids.get(&c.name).map(String::as_str));
            if seen.contains(&reference) {
                continue;
            }
            let users = self
                .targets
                .entry(reference.clone())
                .or_insert_with(|| Users {
                    context: LookupContext {
                        namespace: obj.namespace.clone(),
                        pull_secrets: (obj.spec.image_pull_secrets.iter())
                            .map(|s| s.name.clone())
                            .collect(),
                    },
                    objects: 0,
                    named: Vec::new(),
                });
            users.objects += 1;
            if users.named.len() < MAX_NAMED {
                users
                    .named
                    .push(format!("{}/{}/{}", obj.namespace, obj.kind, obj.name));
            }
            seen.push(reference);
        }
    }

    /// Distinct images to scan.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// `image` pinned to the digest in the kubelet's `imageID` (`docker-pullable://repo@sha256:…`,
/// `repo@sha256:…`): the image that actually runs, whatever its tag points to now. An image
/// already naming a digest, an ID without one (`sha256:…`, a local image) or an unparsable
/// reference is left as it is.
pub fn pinned(image: &str, image_id: Option<&str>) -> String {
    let Ok(reference) = ImageRef::parse(image) else {
        return image.to_string();
    };
    let digest = image_id
        .and_then(|id| id.rsplit_once('@'))
        .and_then(|(_, d)| Digest::parse(d).ok());
    match (reference.digest(), digest) {
        (None, Some(d)) => match reference.tag() {
            Some(tag) => format!("{}:{tag}@{}", reference.name(), d.as_str()),
            None => format!("{}@{}", reference.name(), d.as_str()),
        },
        _ => image.to_string(),
    }
}

/// What the scan of one image found, for the audit's report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScannedImage {
    /// The reference scanned (pinned to the running digest when known).
    pub reference: String,
    /// What it resolved to (an index or an image manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The scan's verdict (the worst platform's); none when it could not be scanned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why it could not be scanned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Read from the cache of earlier scans.
    pub cached: bool,
    /// Objects running it, and the first few of them (`namespace/Kind/name`).
    pub objects: usize,
    pub named: Vec<String>,
    /// The validated modules its passing files rest on (`name #certificate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<String>,
    /// The findings that keep it from `full` (FAIL, WARN, UNKNOWN, accepted ones too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// Problems beyond those listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_problems: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One finding that keeps an image from `full`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub path: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorName>,
    pub reason: String,
    /// The exception that accepts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

impl ScannedImage {
    /// The first problem as `path: ERROR`, and how many more: a table cell.
    pub fn detail(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        let Some(first) = self.problems.first() else {
            return "-".into();
        };
        let error = first
            .error
            .map(|e| e.as_str())
            .unwrap_or_else(|| first.verdict.to_string());
        let more = self.problems.len() - 1 + self.more_problems;
        match more {
            0 => format!("{}: {error}", first.path),
            n => format!("{}: {error} (+{n} more)", first.path),
        }
    }
}

/// Scans every planned image, at most `concurrency` at once; `progress` hears (done, total)
/// after each. The results are in reference order; an image that could not be scanned says
/// why and the others go on.
pub async fn scan_all(
    plan: ScanPlan,
    scanner: &dyn ImageScanner,
    concurrency: usize,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Vec<ScannedImage> {
    let total = plan.len();
    let scans = plan
        .targets
        .into_iter()
        .map(|(reference, users)| async move {
            let target = ScanTarget {
                reference,
                context: users.context.clone(),
            };
            let result = scanner.scan(&target).await;
            summarise(target.reference, users, result)
        });
    let mut running = futures::stream::iter(scans).buffer_unordered(concurrency.max(1));
    let mut out = Vec::with_capacity(total);
    while let Some(scanned) = running.next().await {
        out.push(scanned);
        progress(out.len(), total);
    }
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    out
}

fn summarise(reference: String, users: Users, result: Result<ScanResult, String>) -> ScannedImage {
    let mut image = ScannedImage {
        reference,
        digest: None,
        status: None,
        error: None,
        cached: false,
        objects: users.objects,
        named: users.named,
        modules: Vec::new(),
        problems: Vec::new(),
        more_problems: 0,
    };
    let ScanResult { scan, cached } = match result {
        Ok(r) => r,
        Err(e) => {
            image.error = Some(e);
            return image;
        }
    };
    image.digest = Some(scan.digest);
    image.status = Some(scan.status);
    image.cached = cached;
    for report in &scan.reports {
        let platform = report.image.as_ref().and_then(|i| i.platform.clone());
        for m in &report.modules {
            let name = match &m.certificate {
                Some(c) => format!("{} #{c}", m.name),
                None => m.name.clone(),
            };
            if !image.modules.contains(&name) {
                image.modules.push(name);
            }
        }
        let problems = report
            .findings
            .iter()
            .filter(|f| !matches!(f.verdict, Verdict::Pass | Verdict::NotApplicable));
        for f in problems {
            if image.problems.len() == MAX_PROBLEMS {
                image.more_problems += 1;
                continue;
            }
            image.problems.push(Problem {
                platform: platform.clone(),
                path: f.path.clone(),
                verdict: f.verdict,
                error: f.error,
                reason: f.reason.clone(),
                exception: f.exception.clone(),
            });
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::app::ports::BoxFuture;
    use crate::scan::{Counts, FileKind, Finding, ImageScan, Profile, Report, Rule};

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn images_are_pinned_to_the_digest_that_runs() {
        let id = format!("docker-pullable://docker.io/library/nginx@{D}");
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>, String)] = &[
            ("nginx:1.25", Some(&id), format!("docker.io/library/nginx:1.25@{D}")),
            ("nginx", Some(&id), format!("docker.io/library/nginx:latest@{D}")),
            ("registry.example.com/app:v1", Some(&format!("registry.example.com/app@{D}")), format!("registry.example.com/app:v1@{D}")),
            // A digest in the spec is what runs already.
            (&format!("nginx@{D}"), Some("docker-pullable://nginx@sha256:ffff"), format!("nginx@{D}")),
            // Docker's image ID of a local image, a runtime's bare config digest, nothing.
            ("app:dev", Some("docker://sha256:abc"), "app:dev".into()),
            ("app:dev", Some(D), "app:dev".into()),
            ("app:dev", Some("repo@sha256:short"), "app:dev".into()),
            ("app:dev", None, "app:dev".into()),
            ("Not A Reference", Some(&id), "Not A Reference".into()),
        ];
        for (image, id, want) in cases {
            assert_eq!(&pinned(image, *id), want, "{image} {id:?}");
        }
    }

    fn pod(ns: &str, name: &str, images: &[(&str, Option<&str>)]) -> Listed {
        let containers: Vec<_> = (images.iter().enumerate())
            .map(|(i, (img, _))| serde_json::json!({"name": format!("c{i}"), "image": img}))
            .collect();
        Listed {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: ns.into(),
            name: name.into(),
            owner: None,
            spec: serde_json::from_value(serde_json::json!({
                "containers": containers, "imagePullSecrets": [{"name": "regcred"}]
            }))
            .unwrap(),
            image_ids: (images.iter().enumerate())
                .filter_map(|(i, (_, id))| Some((format!("c{i}"), (*id)?.to_string())))
                .collect(),
        }
    }

    /// Scans from a table, counting how many run at once.
    struct Fake {
        running: AtomicUsize,
        most: AtomicUsize,
        asked: Mutex<Vec<ScanTarget>>,
    }

    impl ImageScanner for Fake {
        fn scan<'a>(&'a self, t: &'a ScanTarget) -> BoxFuture<'a, Result<ScanResult, String>> {
            Box::pin(async move {
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                self.asked.lock().unwrap().push(t.clone());
                if t.reference.contains("broken") {
                    return Err("registry: 401 Unauthorized".into());
                }
                let failing = t.reference.contains("std");
                Ok(ScanResult {
                    scan: image_scan(&t.reference, failing),
                    cached: t.reference.contains("old"),
                })
            })
        }
    }

    fn image_scan(reference: &str, failing: bool) -> ImageScan {
        let finding = |i: usize| Finding {
            path: format!("/bin/app{i}"),
            kind: FileKind::Executable,
            arch: None,
            go_version: None,
            link: None,
            crypto: "go-standard".into(),
            rule: Rule::G10,
            verdict: if failing {
                Verdict::Fail
            } else {
                Verdict::NotApplicable
            },
            error: failing.then_some(ErrorName::GoStandardCrypto),
            reason: "Go's standard crypto (not validated)".into(),
            module: None,
            exception: None,
        };
        let status = if failing { Status::None } else { Status::Full };
        ImageScan {
            reference: reference.into(),
            digest: D.into(),
            index: false,
            status,
            reports: vec![Report {
                image: None,
                date: None,
                scanned_at: None,
                status,
                profile: Profile::Any,
                modules: Vec::new(),
                counts: Counts::default(),
                files_scanned: 30,
                findings: (0..30).map(finding).collect(),
            }],
        }
    }

    #[tokio::test]
    async fn distinct_images_are_scanned_a_few_at_a_time() {
        let mut plan = ScanPlan::default();
        let id = format!("docker-pullable://reg.example/app@{D}");
        for i in 0..7 {
            plan.add(&pod(
                "team",
                &format!("web-{i}"),
                &[("reg.example/app:v1", Some(&id))],
            ));
        }
        plan.add(&pod(
            "team",
            "job",
            &[("reg.example/std:1", None), ("reg.example/std:1", None)],
        ));
        plan.add(&pod(
            "other",
            "a",
            &[("reg.example/broken:1", None), ("reg.example/old:1", None)],
        ));
        assert_eq!(plan.len(), 4);
        let fake = Fake {
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            asked: Mutex::new(Vec::new()),
        };
        let mut seen = Vec::new();
        let out = scan_all(plan, &fake, 2, &mut |done, total| seen.push((done, total))).await;
        assert_eq!(fake.most.load(Ordering::SeqCst), 2);
        assert_eq!(seen, [(1, 4), (2, 4), (3, 4), (4, 4)]);
        let refs: Vec<_> = out.iter().map(|s| s.reference.as_str()).collect();
        let app = format!("reg.example/app:v1@{D}");
        assert_eq!(
            refs,
            [
                &app,
                "reg.example/broken:1",
                "reg.example/old:1",
                "reg.example/std:1"
            ]
        );
        let (app, broken, old, std) = (&out[0], &out[1], &out[2], &out[3]);
        assert_eq!(
            (broken.status, broken.detail().as_str()),
            (None, "registry: 401 Unauthorized")
        );
        assert!(old.cached && !app.cached);
        assert_eq!(
            (app.status, app.objects, app.named.len()),
            (Some(Status::Full), 7, MAX_NAMED)
        );
        assert_eq!(app.detail(), "-");
        assert_eq!(
            (std.objects, std.problems.len(), std.more_problems),
            (1, MAX_PROBLEMS, 10)
        );
        assert_eq!(std.detail(), "/bin/app0: GoStandardCrypto (+29 more)");
        let asked = fake.asked.lock().unwrap();
        let ctx = &asked
            .iter()
            .find(|t| t.reference.contains("broken"))
            .unwrap()
            .context;
        assert_eq!(
            (ctx.namespace.as_str(), ctx.pull_secrets.as_slice()),
            ("other", &["regcred".to_string()][..])
        );
    }
}
