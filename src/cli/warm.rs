//! `serve`'s cache warming: after start, the images of running pods and of the previous
//! replica's warm state are looked up in the background; at stop, this replica's state is
//! written for the next one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::chain::SourceChain;
use crate::app::ports::Inventory;
use crate::app::warm::{self, WarmState, WarmTarget};

/// How long one image's look-up may take while warming.
const PER_IMAGE: Duration = Duration::from_secs(10);

/// What warming may do.
#[derive(Clone, Debug, clap::Args)]
pub struct WarmArgs {
    /// After start, look up this many of the images running pods use (most used first) and of
    /// --warm-state, in the background; 0: none.
    #[arg(long, env = "FIPSGATE_WARM_IMAGES", default_value_t = 2000)]
    pub warm_images: usize,
    /// Registry look-ups at once while warming. A look-up makes up to two registry requests
    /// at once: the default leaves at least half of each registry's 4 request slots to
    /// admissions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub warm_concurrency: u16,
    /// Warm state: read at start, written at stop (the references this replica was asked
    /// about, how often, and the namespace and pull-secret names of a pod that used each;
    /// never a verdict).
    #[arg(long, env = "FIPSGATE_WARM_STATE")]
    pub warm_state: Option<PathBuf>,
}

/// How often the warm state is written while serving (a crashed or killed process leaves the
/// last one).
const SAVE_EVERY: Duration = Duration::from_secs(300);

/// Warming in the background, and the warm state kept; [`Warming::stop`] writes it.
pub struct Warming {
    saver: Saver,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Writes the warm state: what was planned at start and what was asked for since.
#[derive(Clone)]
struct Saver {
    args: WarmArgs,
    chain: Arc<SourceChain>,
    planned: Arc<Mutex<Vec<WarmTarget>>>,
}

impl Warming {
    /// Starts warming `chain` with the pods `inventory` lists, when it asks registries.
    pub fn start(
        args: WarmArgs,
        chain: Arc<SourceChain>,
        inventory: Option<Arc<dyn Inventory>>,
    ) -> Self {
        let saver = Saver {
            args,
            chain,
            planned: Arc::default(),
        };
        let mut tasks = Vec::new();
        if saver.enabled() {
            let s = saver.clone();
            tasks.push(tokio::spawn(
                async move { s.warm(inventory.as_deref()).await },
            ));
            if saver.args.warm_state.is_some() {
                let s = saver.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(SAVE_EVERY).await;
                        s.save();
                    }
                }));
            }
        }
        Self { saver, tasks }
    }

    /// Stops warming and writes the warm state, when there is a file for it.
    pub fn stop(self) {
        self.tasks.iter().for_each(|t| t.abort());
        if self.saver.enabled() {
            self.saver.save();
        }
    }
}

impl Saver {
    fn enabled(&self) -> bool {
        self.chain.asks_registries() && self.args.warm_images > 0
    }

    async fn warm(&self, inventory: Option<&dyn Inventory>) {
        let args = &self.args;
        let seeds = match &args.warm_state {
            Some(p) => read_state(p).unwrap_or_else(|e| {
                tracing::warn!(path = %p.display(), error = %e, "warm state not read");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let pods = match inventory {
            Some(inv) => warm::running_pods(inv, args.warm_images.saturating_mul(10))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "running pods not listed; warming without them");
                    Vec::new()
                }),
            None => Vec::new(),
        };
        let targets = warm::plan(&pods, seeds, args.warm_images);
        *self.planned.lock().unwrap_or_else(|e| e.into_inner()) = targets.clone();
        let concurrency = args.warm_concurrency.into();
        let w = warm::warm(self.chain.as_ref(), &targets, concurrency, PER_IMAGE).await;
        tracing::info!(
            pods = pods.len(),
            images = w.planned,
            looked_up = w.looked_up,
            timed_out = w.timed_out,
            elapsed_ms = w.elapsed.as_millis() as u64,
            "registry cache warmed"
        );
    }

    fn save(&self) {
        let Some(path) = &self.args.warm_state else {
            return;
        };
        // What was planned counts half: an image no longer asked for fades out over restarts.
        let mut planned = self
            .planned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        planned.iter_mut().for_each(|t| t.uses /= 2);
        planned.retain(|t| t.uses > 0);
        let seen = self.chain.looked_up();
        let images = warm::plan(&[], [planned, seen].concat(), self.args.warm_images);
        let n = images.len();
        match write_state(path, &WarmState { images }) {
            Ok(()) => tracing::info!(path = %path.display(), images = n, "warm state written"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "warm state not written")
            }
        }
    }
}

/// The targets of a warm state file; a missing file is an empty state.
fn read_state(path: &Path) -> Result<Vec<WarmTarget>, String> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut text = Vec::new();
    (file.take(WarmState::MAX_BYTES + 1).read_to_end(&mut text)).map_err(|e| e.to_string())?;
    if text.len() as u64 > WarmState::MAX_BYTES {
        return Err(format!("larger than {} bytes", WarmState::MAX_BYTES));
    }
    let state: WarmState = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    Ok(state.images)
}

/// Written beside and renamed over, so a reader never sees half a file.
fn write_state(path: &Path, state: &WarmState) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
        .map_err(|e| e.to_string())?;
    serde_json::to_writer(tmp.as_file(), state).map_err(|e| e.to_string())?;
    tmp.persist(path).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_round_trip_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warm.json");
        assert_eq!(read_state(&path).unwrap(), Vec::new(), "missing: empty");
        let t = WarmTarget::new("r.io/a:v1", &Default::default(), 2);
        write_state(
            &path,
            &WarmState {
                images: vec![t.clone()],
            },
        )
        .unwrap();
        assert_eq!(read_state(&path).unwrap(), vec![t]);
        std::fs::write(&path, "{not json").unwrap();
        assert!(read_state(&path).is_err());
        std::fs::write(
            &path,
            r#"{"images":[{"image":"a","namespace":"n","verdict":"ok"}]}"#,
        )
        .unwrap();
        assert!(read_state(&path).unwrap_err().contains("verdict"));
    }
}
