//! `audit`: what already runs, judged with the same engine as admission. Listing is paged
//! through the [`Inventory`] port and each page is judged before the next is fetched, so memory
//! stays bounded by a page; results are summarised per namespace as they arrive.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::app::assess::classify;
use crate::app::ports::{AssessmentSource, Inventory, ListError, Listed, LookupContext};
use crate::app::scan_audit::{ScanPlan, ScannedImage};
use crate::domain::fips::Status;
use crate::domain::policy::{Level, Levels, NamespacePolicy};
use crate::domain::workload::{KINDS, Kind};
use crate::engine::{self, Classification, Exemption, Grant, Outcome, Rules, Subject, Verdict};

/// What to audit.
pub struct Audit<'a> {
    pub rules: &'a Rules,
    pub source: &'a dyn AssessmentSource,
    pub inventory: &'a dyn Inventory,
    /// Only this namespace (all when `None`).
    pub namespace: Option<&'a str>,
    /// Workloads too, not only pods.
    pub workloads: bool,
    /// Every namespace at this level instead of its labels.
    pub level: Option<Level>,
    /// Objects per list request.
    pub page_size: u32,
    pub today: jiff::civil::Date,
    /// Plan a scan of the distinct images seen ([`Report::plan`]).
    pub scan: bool,
}

/// How far the audit is, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Objects judged, distinct images seen, the kind being listed.
    Listed {
        objects: usize,
        images: usize,
        plural: &'static str,
    },
    /// The cluster does not serve this kind; it was skipped.
    NotServed(&'static str),
}

/// Why an audit stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Namespaces(String),
    #[error("listing {plural}: {reason}")]
    List {
        plural: &'static str,
        reason: String,
    },
}

impl Summary {
    /// An empty summary of a namespace judged under `policy`.
    pub fn under(policy: &NamespacePolicy) -> Self {
        Self {
            levels: policy.levels,
            label_errors: policy.errors.clone(),
            ..Self::default()
        }
    }
}

impl Audit<'_> {
    /// Lists and judges everything asked for. Every namespace read is in the report, with
    /// its levels and label errors, even when nothing runs in it.
    pub async fn run(&self, progress: &mut dyn FnMut(Progress)) -> Result<Report, AuditError> {
        let policies = self.policies().await?;
        let mut report = Report {
            exemptions: exemption_states(self.rules, self.today),
            ..Report::default()
        };
        for (name, policy) in &policies {
            report
                .namespaces
                .insert(name.clone(), Summary::under(policy));
        }
        let mut judge = Judging {
            audit: self,
            policies,
            memo: HashMap::new(),
            report,
            count: 0,
        };
        let kinds = KINDS
            .iter()
            .filter(|k| k.listed && (self.workloads || k.enforceable()));
        for kind in kinds {
            judge.kind(kind, progress).await?;
        }
        let mut images: Vec<ImageSummary> = (judge.memo.iter())
            .map(|(image, (class, objects))| ImageSummary::of(image, class, *objects, self.today))
            .collect();
        images.sort_by(|a, b| a.image.cmp(&b.image));
        judge.report.images = images;
        Ok(judge.report)
    }

    /// Each namespace's policy, from its labels (or the override).
    async fn policies(&self) -> Result<HashMap<String, NamespacePolicy>, AuditError> {
        if self.level.is_some() {
            return Ok(HashMap::new());
        }
        let namespaces = self
            .inventory
            .namespaces(self.namespace)
            .await
            .map_err(AuditError::Namespaces)?;
        Ok(namespaces
            .into_iter()
            .map(|(name, labels)| {
                let policy = NamespacePolicy::from_label_map(&labels, &self.rules.defaults);
                (name, policy)
            })
            .collect())
    }

    fn policy_for(&self, policies: &HashMap<String, NamespacePolicy>, ns: &str) -> NamespacePolicy {
        match self.level {
            Some(l) => NamespacePolicy {
                levels: Levels {
                    enforce: l,
                    warn: l,
                    audit: l,
                },
                errors: Vec::new(),
            },
            None => policies
                .get(ns)
                .cloned()
                .unwrap_or_else(|| NamespacePolicy::defaults(&self.rules.defaults)),
        }
    }
}

/// An audit under way.
struct Judging<'a> {
    audit: &'a Audit<'a>,
    policies: HashMap<String, NamespacePolicy>,
    /// Each distinct image, classified once, and the objects running it.
    memo: HashMap<String, (Classification, usize)>,
    report: Report,
    count: usize,
}

impl Judging<'_> {
    /// Lists one kind page by page, judging each page before the next is fetched.
    async fn kind(
        &mut self,
        kind: &'static Kind,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), AuditError> {
        let a = self.audit;
        let mut version = kind.version;
        let mut cont: Option<String> = None;
        loop {
            let first = cont.is_none();
            let page = a
                .inventory
                .page(kind, version, a.namespace, a.page_size, cont.take())
                .await;
            let (items, next) = match page {
                Ok(p) => p,
                // Older clusters serve some kinds under another version only.
                Err(ListError::NotServed)
                    if first && version == kind.version && kind.fallback_version.is_some() =>
                {
                    version = kind.fallback_version.unwrap_or(kind.version);
                    continue;
                }
                Err(ListError::NotServed) if first => {
                    progress(Progress::NotServed(kind.plural));
                    return Ok(());
                }
                Err(e) => {
                    return Err(AuditError::List {
                        plural: kind.plural,
                        reason: e.to_string(),
                    });
                }
            };
            for obj in items.iter().filter(|o| !covered(o)) {
                self.object(obj).await;
            }
            progress(Progress::Listed {
                objects: self.count,
                images: self.memo.len(),
                plural: kind.plural,
            });
            match next {
                Some(c) => cont = Some(c),
                None => return Ok(()),
            }
        }
    }

    /// Judges one listed object and records it.
    async fn object(&mut self, obj: &Listed) {
        let a = self.audit;
        let ctx = LookupContext {
            namespace: obj.namespace.clone(),
            pull_secrets: obj
                .spec
                .image_pull_secrets
                .iter()
                .map(|s| s.name.clone())
                .collect(),
        };
        let mut classes = Vec::with_capacity(obj.spec.len());
        let mut counted: Vec<&str> = Vec::new();
        for (_, c) in obj.spec.all() {
            // An object counts once per image, however many of its containers run it.
            let first = !counted.contains(&c.image.as_str());
            if first {
                counted.push(&c.image);
            }
            if let Some((known, objects)) = self.memo.get_mut(&c.image) {
                *objects += usize::from(first);
                classes.push(known.clone());
                continue;
            }
            let (class, _) = classify(a.rules, a.source, &c.image, &ctx, None, a.today).await;
            self.memo.insert(c.image.clone(), (class.clone(), 1));
            classes.push(class);
        }
        let policy = a.policy_for(&self.policies, &obj.namespace);
        let subject = Subject {
            kind: &obj.kind,
            namespace: &obj.namespace,
            name: &obj.name,
            username: "",
            enforceable: true,
            previous: None,
        };
        let mut d = engine::evaluate(a.rules, &subject, &obj.spec, &classes, &policy, a.today);
        engine::with_modules(&mut d.findings, &classes, a.today);
        (self.report.namespaces)
            .entry(obj.namespace.clone())
            .or_insert_with(|| Summary::under(&policy));
        record(&mut self.report, obj, d);
        if a.scan {
            self.report.plan.add(obj);
        }
        self.count += 1;
    }
}

/// One namespace: the levels it is judged at, its label errors, and counts.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// The effective levels: its labels over the configured defaults (or `--level`).
    pub levels: Levels,
    /// Invalid `fipsgate.io/*` label values, each evaluated as strict.
    #[serde(rename = "labelErrors", default, skip_serializing_if = "Vec::is_empty")]
    pub label_errors: Vec<String>,
    pub objects: usize,
    pub compliant: usize,
    pub partial: usize,
    #[serde(rename = "nonCompliant")]
    pub non_compliant: usize,
    pub exempt: usize,
    /// Objects whose pods the namespace's enforce level would deny.
    #[serde(rename = "wouldDeny")]
    pub would_deny: usize,
}

/// One object with a violation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditFinding {
    pub namespace: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub outcome: Outcome,
    pub message: Option<String>,
    pub findings: Vec<engine::Finding>,
}

/// The whole audit: what `audit -o json` writes and `fipsgate report --from` reads back.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Where and when the audit ran, and with what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<AuditMeta>,
    pub namespaces: BTreeMap<String, Summary>,
    pub findings: Vec<AuditFinding>,
    /// Each distinct image, as judged, with how many objects run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageSummary>,
    /// The images to scan, when asked ([`Audit::scan`]).
    #[serde(skip)]
    pub plan: ScanPlan,
    /// What their scans found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scans: Vec<ScannedImage>,
    /// Every configured exemption and where it stands on the day of the audit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<ExemptionState>,
}

/// Where and when an audit ran, and with what: a report's heading.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditMeta {
    pub generated_at: jiff::Timestamp,
    /// The day certificate statuses and exemptions were judged on.
    pub day: jiff::civil::Date,
    /// The kubeconfig context, or the API server's address.
    pub cluster: String,
    pub fipsgate_version: String,
    /// The catalogue: its component and certificate counts and a digest of its content.
    pub catalog: String,
    /// The cryptographic module of the fipsgate that audited, and whether it ran in FIPS mode.
    pub crypto_module: String,
    pub fips_mode: bool,
}

/// One distinct image as judged (no namespace's level applied), and how many objects run it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    pub image: String,
    /// `full`, `partial`, `none`, `unknown`; `exempt` and `invalid` say why there is none.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::domain::fips::Evidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<engine::ModuleStatus>,
    /// What is wrong, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub objects: usize,
}

impl ImageSummary {
    /// The summary of `image` as classified, run by `objects` objects.
    pub fn of(
        image: &str,
        class: &Classification,
        objects: usize,
        today: jiff::civil::Date,
    ) -> Self {
        let mut s = Self {
            image: image.to_string(),
            status: String::new(),
            component: None,
            evidence: None,
            digest: None,
            modules: Vec::new(),
            problem: None,
            objects,
        };
        match class {
            Classification::Exempt => s.status = "exempt".into(),
            Classification::Invalid(e) => {
                s.status = "invalid".into();
                s.problem = Some(e.to_string());
            }
            Classification::Assessed(a) => {
                s.status = a.status().to_string();
                s.component = a.component().map(|c| c.id.clone());
                s.evidence = Some(a.evidence());
                s.digest = a.digest().map(str::to_string);
                s.modules = (a.modules().iter())
                    .map(|m| engine::ModuleStatus::of(m, today))
                    .collect();
                s.problem = a.problem().map(str::to_string);
            }
        }
        s
    }
}

/// Where an exemption stands on a day: what a plan of action is tracked by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionState {
    pub kind: Exemption,
    #[serde(flatten)]
    pub grant: Grant,
    /// Days it still exempts, today included (0: expired); none when open-ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    pub state: GrantState,
}

/// `active`, `expired`, or `open-ended` (no `expires`: flagged, a plan of action has a date).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GrantState {
    Active,
    Expired,
    OpenEnded,
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::OpenEnded => "open-ended",
        }
    }
}

/// Every exemption of `rules` as it stands on `today`.
pub fn exemption_states(rules: &Rules, today: jiff::civil::Date) -> Vec<ExemptionState> {
    (rules.exemptions.grants())
        .map(|(kind, g)| {
            let days_left = g.expires.map(|last| {
                let days = today.until(last).map_or(0, |s| i64::from(s.get_days()));
                (days + 1).max(0)
            });
            let state = match days_left {
                None => GrantState::OpenEnded,
                Some(0) => GrantState::Expired,
                Some(_) => GrantState::Active,
            };
            ExemptionState {
                kind,
                grant: g.clone(),
                days_left,
                state,
            }
        })
        .collect()
}

/// Adds one evaluated object to the report.
pub fn record(report: &mut Report, obj: &Listed, d: engine::Decision) {
    let s = report.namespaces.entry(obj.namespace.clone()).or_default();
    s.objects += 1;
    let statuses: Vec<Option<Status>> = d.findings.iter().map(|f| f.status).collect();
    let all_exempt =
        !d.findings.is_empty() && d.findings.iter().all(|f| f.verdict == Verdict::Exempt);
    if d.exemption.is_some_and(|e| e != Exemption::Image) || all_exempt {
        s.exempt += 1;
        return;
    }
    let non_compliant = d.findings.iter().any(|f| {
        f.verdict != Verdict::Exempt && !matches!(f.status, Some(Status::Full | Status::Partial))
    });
    if non_compliant {
        s.non_compliant += 1;
    } else if statuses.contains(&Some(Status::Partial)) {
        s.partial += 1;
    } else {
        s.compliant += 1;
    }
    if d.outcome != Outcome::Allow {
        s.would_deny += 1;
    }
    let violating = d
        .findings
        .iter()
        .any(|f| matches!(f.verdict, Verdict::Denied | Verdict::Warned));
    if violating {
        report.findings.push(AuditFinding {
            namespace: obj.namespace.clone(),
            api_version: obj.api_version.clone(),
            kind: obj.kind.clone(),
            name: obj.name.clone(),
            outcome: d.outcome,
            message: d.message,
            findings: d.findings,
        });
    }
}

/// True for workloads another listed workload already stands for (their controller). Pods
/// are always checked: they are what actually runs.
fn covered(obj: &Listed) -> bool {
    match (obj.kind.as_str(), &obj.owner) {
        ("ReplicaSet", Some((k, _))) => k == "Deployment",
        ("Job", Some((k, _))) => k == "CronJob",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ports::{BoxFuture, Labels, Page};
    use crate::catalog::Catalog;
    use crate::engine::Exemptions;

    fn obj(ns: &str, kind: &str, name: &str, images: &[&str]) -> Listed {
        let containers: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, img)| serde_json::json!({"name": format!("c{i}"), "image": img}))
            .collect();
        Listed {
            api_version: if kind == "Pod" { "v1" } else { "apps/v1" }.into(),
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            owner: None,
            spec: serde_json::from_value(serde_json::json!({"containers": containers})).unwrap(),
            image_ids: Default::default(),
        }
    }

    fn owned(mut o: Listed, owner: &str) -> Listed {
        o.owner = Some((owner.into(), "uid".into()));
        o
    }

    /// A cluster in memory: pages of `limit` objects, kinds served only at some versions.
    struct Cluster {
        objects: Vec<Listed>,
        namespaces: Vec<(String, Labels)>,
        /// (plural, version) pairs the cluster answers 404 for.
        not_served: Vec<(&'static str, &'static str)>,
    }

    impl Inventory for Cluster {
        fn page<'a>(
            &'a self,
            kind: &'a Kind,
            version: &'a str,
            namespace: Option<&'a str>,
            limit: u32,
            continue_token: Option<String>,
        ) -> BoxFuture<'a, Result<Page, ListError>> {
            let served = !self.not_served.contains(&(kind.plural, version));
            let from: usize = continue_token.map_or(0, |c| c.parse().unwrap());
            let all: Vec<_> = self
                .objects
                .iter()
                .filter(|o| o.kind == kind.kind && namespace.is_none_or(|n| n == o.namespace))
                .cloned()
                .collect();
            let to = (from + limit as usize).min(all.len());
            let next = (to < all.len()).then(|| to.to_string());
            let page = all[from..to].to_vec();
            Box::pin(async move {
                if served {
                    Ok((page, next))
                } else {
                    Err(ListError::NotServed)
                }
            })
        }

        fn namespaces<'a>(
            &'a self,
            only: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Vec<(String, Labels)>, String>> {
            let all = self.namespaces.iter().cloned();
            let found = all.filter(|(n, _)| only.is_none_or(|o| o == n)).collect();
            Box::pin(std::future::ready(Ok(found)))
        }
    }

    fn levels(all: Level) -> Levels {
        Levels {
            enforce: all,
            warn: all,
            audit: all,
        }
    }

    fn labels(enforce: &str) -> Labels {
        Labels::from([("fipsgate.io/enforce".into(), enforce.into())])
    }

    #[tokio::test]
    async fn every_kind_page_by_page_with_labels_owners_and_old_versions() {
        let fips = "gcr.io/spectro-images-fips/coredns:v1";
        let lh = "gcr.io/spectro-images-fips/longhornio/longhorn-manager:v1";
        let cluster = Cluster {
            objects: vec![
                obj("a", "Pod", "ok", &[fips]),
                obj("a", "Pod", "bad", &["nginx", fips]),
                obj("a", "Deployment", "half", &[lh]),
                owned(obj("a", "ReplicaSet", "half-1", &[lh]), "Deployment"),
                obj("b", "Pod", "warned", &["busybox"]),
                obj("b", "CronJob", "nightly", &["busybox"]),
                owned(obj("b", "Job", "nightly-1", &["busybox"]), "CronJob"),
                obj("kube-system", "Pod", "dns", &["nginx"]),
            ],
            namespaces: vec![
                ("a".into(), labels("strict")),
                ("b".into(), labels("off")),
                ("c".into(), labels("bogus")),
            ],
            not_served: vec![("cronjobs", "v1"), ("statefulsets", "v1")],
        };
        let rules = Rules {
            exemptions: Exemptions::new(&["kube-system".into()], &[], &[]).unwrap(),
            ..Rules::default()
        };
        let catalog = Catalog::embedded();
        let audit = Audit {
            rules: &rules,
            source: &catalog,
            inventory: &cluster,
            namespace: None,
            workloads: true,
            level: None,
            page_size: 1,
            today: jiff::civil::date(2026, 11, 26),
            scan: false,
        };
        let mut events = Vec::new();
        let report = audit.run(&mut |e| events.push(e)).await.unwrap();
        assert_eq!(
            report.namespaces["a"],
            Summary {
                levels: levels(Level::Strict),
                label_errors: Vec::new(),
                objects: 3,
                compliant: 1,
                partial: 1,
                non_compliant: 1,
                exempt: 0,
                would_deny: 2
            }
        );
        // A namespace where nothing runs is reported with its levels and label errors.
        let c = &report.namespaces["c"];
        assert_eq!((c.objects, c.levels), (0, levels(Level::Strict)));
        assert_eq!(
            c.label_errors,
            ["invalid value \"bogus\" for label fipsgate.io/enforce: evaluated as strict"]
        );
        // The CronJob is listed at batch/v1beta1; its Job and the Deployment's ReplicaSet are
        // covered by their owners.
        assert_eq!(
            report.namespaces["b"],
            Summary {
                levels: Levels {
                    enforce: Level::Off,
                    ..Levels::default()
                },
                objects: 2,
                non_compliant: 2,
                ..Summary::default()
            }
        );
        assert_eq!(report.namespaces["kube-system"].exempt, 1);
        let names: Vec<_> = report.findings.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["bad", "warned", "half", "nightly"]);
        assert!(events.contains(&Progress::NotServed("statefulsets")));
        assert!(!events.contains(&Progress::NotServed("cronjobs")));
        let last = events.iter().rev().find_map(|e| match e {
            Progress::Listed {
                objects, images, ..
            } => Some((*objects, *images)),
            Progress::NotServed(_) => None,
        });
        assert_eq!(last, Some((8 - 2, 4)), "objects judged, distinct images");
        assert!(report.plan.is_empty(), "no scan asked for");
    }

    /// An exemption past its last day exempts nothing in an audit either: the object counts as
    /// what it is, and its reason says the exemption expired.
    #[tokio::test]
    async fn an_expired_exemption_exempts_nothing() {
        let cluster = Cluster {
            objects: vec![
                obj("legacy", "Pod", "p", &["nginx"]),
                obj("kept", "Pod", "q", &["nginx"]),
            ],
            namespaces: vec![
                ("legacy".into(), labels("strict")),
                ("kept".into(), labels("strict")),
            ],
            not_served: Vec::new(),
        };
        let grant = |name: &str, expires| Grant {
            name: name.into(),
            reason: None,
            ticket: Some("POAM-3".into()),
            expires: Some(expires),
        };
        let day = jiff::civil::date;
        let rules = Rules {
            exemptions: engine::Exemptions::from_grants(
                vec![
                    grant("legacy", day(2026, 11, 25)),
                    grant("kept", day(2026, 11, 26)),
                ],
                Vec::new(),
                Vec::new(),
            )
            .unwrap(),
            ..Rules::default()
        };
        let catalog = Catalog::embedded();
        let audit = Audit {
            rules: &rules,
            source: &catalog,
            inventory: &cluster,
            namespace: None,
            workloads: false,
            level: None,
            page_size: 500,
            today: day(2026, 11, 26),
            scan: false,
        };
        let report = audit.run(&mut |_| {}).await.unwrap();
        let (legacy, kept) = (&report.namespaces["legacy"], &report.namespaces["kept"]);
        assert_eq!(
            (legacy.exempt, legacy.non_compliant, legacy.would_deny),
            (0, 1, 1)
        );
        assert_eq!((kept.exempt, kept.would_deny), (1, 0));
        let message = report.findings[0].message.as_deref().unwrap();
        assert!(
            message.ends_with(
                "(the exemption of namespace \"legacy\" (POAM-3) expired on 2026-11-25)"
            ),
            "{message}"
        );
        let states: Vec<_> = report.exemptions.iter().map(|e| e.state).collect();
        assert_eq!(states, [GrantState::Active, GrantState::Expired]);
    }

    #[tokio::test]
    async fn a_level_overrides_labels_and_one_namespace_is_listed() {
        let cluster = Cluster {
            objects: vec![
                obj("a", "Pod", "p", &["nginx"]),
                obj("b", "Pod", "q", &["nginx"]),
            ],
            namespaces: vec![("a".into(), labels("off"))],
            not_served: Vec::new(),
        };
        let rules = Rules::default();
        let catalog = Catalog::embedded();
        let audit = Audit {
            rules: &rules,
            source: &catalog,
            inventory: &cluster,
            namespace: Some("a"),
            workloads: false,
            level: Some(Level::Strict),
            page_size: 500,
            today: jiff::civil::date(2026, 11, 26),
            scan: true,
        };
        let report = audit.run(&mut |_| {}).await.unwrap();
        assert_eq!(report.namespaces.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(report.namespaces["a"].would_deny, 1);
        assert_eq!(report.plan.len(), 1, "the images of what was audited");
    }

    #[test]
    fn exemptions_are_listed_with_the_days_they_have_left() {
        let g = |name: &str, expires| Grant {
            name: name.into(),
            reason: None,
            ticket: Some("POAM-1".into()),
            expires,
        };
        let day = jiff::civil::date;
        let rules = Rules {
            exemptions: engine::Exemptions::from_grants(
                vec![g("ends-today", Some(day(2026, 11, 26))), g("open", None)],
                vec![g("ended", Some(day(2026, 11, 25)))],
                vec![g("busybox", Some(day(2026, 12, 25)))],
            )
            .unwrap(),
            ..Rules::default()
        };
        let states: Vec<_> = exemption_states(&rules, day(2026, 11, 26))
            .into_iter()
            .map(|s| (s.kind, s.grant.name, s.days_left, s.state))
            .collect();
        assert_eq!(
            states,
            [
                (
                    Exemption::Namespace,
                    "ends-today".into(),
                    Some(1),
                    GrantState::Active
                ),
                (
                    Exemption::Namespace,
                    "open".into(),
                    None,
                    GrantState::OpenEnded
                ),
                (
                    Exemption::User,
                    "ended".into(),
                    Some(0),
                    GrantState::Expired
                ),
                (
                    Exemption::Image,
                    "busybox".into(),
                    Some(30),
                    GrantState::Active
                ),
            ]
        );
    }

    #[test]
    fn owned_workloads_are_not_counted_twice() {
        assert!(covered(&owned(
            obj("a", "ReplicaSet", "web-1", &[]),
            "Deployment"
        )));
        assert!(covered(&owned(
            obj("a", "Job", "nightly-1", &[]),
            "CronJob"
        )));
        assert!(!covered(&owned(
            obj("a", "Pod", "web-1-x", &[]),
            "ReplicaSet"
        )));
    }
}
