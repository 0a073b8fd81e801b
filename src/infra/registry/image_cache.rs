//! The registry look-up cache: one compact entry per image reference, carrying the digest the
//! reference stood for and the verdict on that digest's attestations, each with its own
//! lifetime. A tag whose resolution is due is resolved again alone and keeps its verdict when
//! it still names the same digest; a digest reference has no resolution of its own.
//!
//! quick_cache keeps an entry in a slot of a few machine words (moka's bookkeeping is about
//! 300 bytes per entry), and a concurrent load of one key waits for the first one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, EntryAction, EntryResult, PlaceholderGuard};
use quick_cache::{DefaultHashBuilder, UnitWeighter};

use crate::app::ports::{Found, Lookup};
use crate::domain::assessment::Assessment;

/// A sha256 digest as its 32 bytes (nearly every digest); any other as its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum CompactDigest {
    Sha256([u8; 32]),
    Other(Arc<str>),
}

impl CompactDigest {
    pub fn new(digest: &str) -> Self {
        let bytes = digest.strip_prefix("sha256:").and_then(|hex| {
            let hex = hex.as_bytes();
            let mut out = [0u8; 32];
            if hex.len() != 64 {
                return None;
            }
            for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
                *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
            }
            Some(out)
        });
        match bytes {
            Some(b) => Self::Sha256(b),
            None => Self::Other(digest.into()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::Sha256(b) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(71);
                s.push_str("sha256:");
                for &x in b {
                    s.push(HEX[usize::from(x >> 4)] as char);
                    s.push(HEX[usize::from(x & 15)] as char);
                }
                s
            }
            Self::Other(s) => s.to_string(),
        }
    }
}

/// Lower-case hex only: a digest in another spelling is kept as text, never normalised.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// What the registry said about one digest's attestations.
#[derive(Clone, Debug)]
pub(super) enum Verdict {
    /// Verified, as the assessment admissions get (without the digest).
    Attested(Assessment),
    Rejected(Arc<str>),
    Missing,
    /// The attestations could not be read: kept briefly, never a verdict.
    Failed(Arc<str>),
}

impl Verdict {
    pub fn of(found: Result<Found, Arc<str>>) -> Self {
        match found {
            Ok(Found::Attested(a)) => Self::Attested(a),
            Ok(Found::Rejected(r)) => Self::Rejected(r.into()),
            Ok(Found::Missing) => Self::Missing,
            Err(e) => Self::Failed(e),
        }
    }

    fn found(&self) -> Result<Found, Arc<str>> {
        match self {
            Self::Attested(a) => Ok(Found::Attested(a.clone())),
            Self::Rejected(r) => Ok(Found::Rejected(r.to_string())),
            Self::Missing => Ok(Found::Missing),
            Self::Failed(e) => Err(e.clone()),
        }
    }
}

/// What a reference stood for when it was last looked up.
#[derive(Clone, Debug)]
pub(super) enum State {
    NotFound,
    Unresolved(Arc<str>),
    Resolved {
        digest: CompactDigest,
        verdict: Verdict,
    },
}

/// A cached reference. Deadlines are in tenths of a second since the cache was made.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// After this the reference is resolved again (a tag's digest may have moved).
    resolve_by: u32,
    /// After this the verdict is fetched again.
    verdict_by: u32,
    pub state: State,
}

impl Entry {
    pub fn answer(&self) -> Lookup {
        match &self.state {
            State::NotFound => Lookup::NotFound,
            State::Unresolved(e) => Lookup::Unresolved(e.clone()),
            State::Resolved { digest, verdict } => Lookup::Resolved {
                digest: digest.text(),
                found: verdict.found(),
            },
        }
    }

    /// The verdict, while it is still good (a tag resolved again keeps it when its digest
    /// did not move).
    pub fn verdict_for(&self, digest: &str, now: u32) -> Option<&Verdict> {
        match &self.state {
            State::Resolved { digest: d, verdict } if now < self.verdict_by => {
                (*d == CompactDigest::new(digest)).then_some(verdict)
            }
            _ => None,
        }
    }

    /// When the verdict is due.
    pub fn verdict_by(&self) -> u32 {
        self.verdict_by
    }

    fn fresh(&self, now: u32) -> bool {
        now < self.resolve_by && now < self.verdict_by
    }
}

/// How long each kind of answer is kept.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lifetimes {
    /// A tag's resolution to a digest.
    pub resolution: Duration,
    /// A verified attestation.
    pub attested: Duration,
    /// No attestation, a refused one, or no such image.
    pub negative: Duration,
    /// A look-up failure.
    pub error: Duration,
}

/// One entry per image reference, bounded in number.
pub(super) struct ImageCache {
    entries: Cache<String, Entry>,
    lifetimes: Lifetimes,
    epoch: Instant,
}

type Guard<'a> = PlaceholderGuard<
    'a,
    String,
    Entry,
    UnitWeighter,
    DefaultHashBuilder,
    quick_cache::sync::DefaultLifecycle<String, Entry>,
>;

/// A look-up in progress: the entry's slot, held so that concurrent look-ups of one reference
/// wait for this one.
pub(super) struct Loading<'a> {
    guard: Option<Guard<'a>>,
    /// The stale entry this load replaces, when there was one.
    pub previous: Option<Entry>,
}

impl Loading<'_> {
    pub fn finish(mut self, entry: Entry) -> Lookup {
        let answer = entry.answer();
        if let Some(g) = self.guard.take() {
            let _ = g.insert(entry);
        }
        answer
    }
}

/// A cached answer, or the right (and duty) to look the reference up.
pub(super) enum Cached<'a> {
    Hit(Entry),
    Load(Loading<'a>),
}

impl ImageCache {
    pub fn new(max_entries: u64, lifetimes: Lifetimes) -> Self {
        let max = usize::try_from(max_entries).unwrap_or(usize::MAX).max(1);
        Self {
            entries: Cache::new(max),
            lifetimes,
            epoch: Instant::now(),
        }
    }

    /// Now, in the entries' clock.
    pub fn now(&self) -> u32 {
        ticks(self.epoch.elapsed())
    }

    /// The fresh entry for `key`, or a load of it; concurrent callers of one key wait for one
    /// load.
    pub async fn get(&self, key: &str) -> Cached<'_> {
        if let Some(e) = self.entries.get(key).filter(|e| e.fresh(self.now())) {
            return Cached::Hit(e);
        }
        let now = self.now();
        let refresh = |_: &String, e: &mut Entry| {
            if e.fresh(now) {
                EntryAction::Retain(e.clone())
            } else {
                EntryAction::ReplaceWithGuard
            }
        };
        let (guard, previous) = match self.entries.entry_async(key, refresh).await {
            EntryResult::Retained(e) => return Cached::Hit(e),
            EntryResult::Replaced(g, old) => (Some(g), Some(old)),
            EntryResult::Vacant(g) => (Some(g), None),
            // Neither is returned for a callback that never removes, nor without a timeout;
            // the look-up then goes uncached.
            EntryResult::Removed(..) | EntryResult::Timeout => (None, None),
        };
        Cached::Load(Loading { guard, previous })
    }

    /// An entry for `state` found now: `digest_ref` references have no resolution of their
    /// own, and a verdict still good from `kept_until` keeps its deadline.
    pub fn entry(&self, state: State, digest_ref: bool, kept_until: Option<u32>) -> Entry {
        let now = self.now();
        let after = |d: Duration| now.saturating_add(ticks(d));
        let l = &self.lifetimes;
        let verdict_by = kept_until.unwrap_or_else(|| {
            after(match &state {
                State::Resolved {
                    verdict: Verdict::Attested(_),
                    ..
                } => l.attested,
                State::Unresolved(_)
                | State::Resolved {
                    verdict: Verdict::Failed(_),
                    ..
                } => l.error,
                _ => l.negative,
            })
        });
        let resolve_by = if digest_ref {
            verdict_by
        } else {
            verdict_by.min(after(l.resolution))
        };
        Entry {
            resolve_by,
            verdict_by,
            state,
        }
    }

    /// How many references are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

fn ticks(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(100)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0c6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3";

    #[test]
    fn digests_round_trip_compactly() {
        for d in [
            D,
            "sha512:ab",
            "sha256:0C6F",
            "sha256:zz6f4f7e8d4b1b2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3",
        ] {
            assert_eq!(CompactDigest::new(d).text(), d);
        }
        assert!(matches!(CompactDigest::new(D), CompactDigest::Sha256(_)));
        assert!(matches!(
            CompactDigest::new(&D.to_uppercase()),
            CompactDigest::Other(_)
        ));
    }

    #[test]
    fn an_entry_is_a_few_words() {
        assert!(
            std::mem::size_of::<Entry>() <= 104,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    fn cache() -> ImageCache {
        ImageCache::new(
            16,
            Lifetimes {
                resolution: Duration::from_secs(60),
                attested: Duration::from_secs(600),
                negative: Duration::from_secs(30),
                error: Duration::from_secs(5),
            },
        )
    }

    fn resolved(verdict: Verdict) -> State {
        State::Resolved {
            digest: CompactDigest::new(D),
            verdict,
        }
    }

    /// Each kind of answer lives as long as its lifetime says; a tag is resolved again
    /// before its verdict is due, a digest reference is not.
    #[test]
    fn lifetimes_by_kind() {
        let c = cache();
        let now = c.now();
        let attested = Verdict::Attested(Assessment::not_listed());
        let cases = [
            (resolved(attested.clone()), false, 600, 6000),
            (resolved(attested), true, 6000, 6000),
            (resolved(Verdict::Missing), false, 300, 300),
            (resolved(Verdict::Rejected("no".into())), false, 300, 300),
            (resolved(Verdict::Failed("down".into())), false, 50, 50),
            (State::Unresolved("down".into()), false, 50, 50),
            (State::NotFound, false, 300, 300),
        ];
        for (state, digest_ref, resolve, verdict) in cases {
            let e = c.entry(state.clone(), digest_ref, None);
            assert!(
                e.resolve_by.abs_diff(now + resolve) <= 1,
                "{state:?}: {}",
                e.resolve_by
            );
            assert!(e.verdict_by.abs_diff(now + verdict) <= 1, "{state:?}");
        }
        let kept = c.entry(resolved(Verdict::Missing), false, Some(now + 20));
        assert_eq!((kept.resolve_by, kept.verdict_by), (now + 20, now + 20));
    }

    #[test]
    fn a_verdict_is_kept_only_for_its_digest_and_lifetime() {
        let c = cache();
        let e = c.entry(resolved(Verdict::Missing), false, None);
        let now = c.now();
        assert!(e.verdict_for(D, now).is_some());
        assert!(e.verdict_for(&D.replace('0', "1"), now).is_none());
        assert!(e.verdict_for(D, now + 301).is_none());
    }

    /// Concurrent look-ups of one reference wait for the first; a fresh entry is a hit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_load_per_reference() {
        let c = Arc::new(cache());
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (c, loads) = (c.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                match c.get("r/a:v1").await {
                    Cached::Hit(e) => e.answer(),
                    Cached::Load(l) => {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        l.finish(c.entry(State::NotFound, false, None))
                    }
                }
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Lookup::NotFound));
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(c.len(), 1);
    }

    /// A load that is dropped (its request cancelled) leaves the next caller to load.
    #[tokio::test]
    async fn a_dropped_load_is_taken_over() {
        let c = cache();
        let Cached::Load(first) = c.get("r/a:v1").await else {
            panic!("cached before any load");
        };
        drop(first);
        assert!(matches!(c.get("r/a:v1").await, Cached::Load(_)));
    }
}
