//! The set-up `tests/fix_runtime.rs` works in: the real runtimes, a directory they can all
//! read, the id map idfit is given, loading many images per `load`, and the layer
//! comparison every fixed image must pass (kept blobs byte for byte, rewritten ones changed
//! only in ownership).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::archive;
use super::blocks::{self, LayerDiff};
use super::idfit::{self, Fixed};
use super::inspect::{self, ArchiveImage};
use super::runtimes::{Outcome, Runtime, Runtimes};

/// One user of the shared runtimes at a time: tests run on parallel threads, and the
/// daemons' logs are easier to read one image at a time.
static RUNTIMES_IN_USE: Mutex<()> = Mutex::new(());

/// The account files `--policy remap` rewrites; every other file's content must survive.
pub const ACCOUNT_FILES: [&str; 2] = ["etc/passwd", "etc/group"];

/// The runtimes, a directory they can all read, and the map idfit is given.
pub struct Bench {
    pub runtimes: Runtimes,
    /// The runtimes of [`Runtime::ALL`] that are configured: the ones containers are run on.
    pub available: Vec<Runtime>,
    /// Every configured runtime, rootful Podman too: the ones images are loaded into.
    pub loaders: Vec<Runtime>,
    /// `--uid-map`/`--gid-map` of the Docker daemons (ids 0-65535), which rootless Podman's
    /// map (0-65536) covers too, so `--runtime strict` fixes for all three.
    maps: Vec<String>,
    dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Bench {
    /// `None` (after saying why) when no runtime is configured, outside CI.
    pub fn new() -> Option<Bench> {
        let runtimes = Runtimes::from_env_for("the fix runtime test")?;
        let turn = RUNTIMES_IN_USE
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let loaders = runtimes.available();
        let available: Vec<Runtime> = loaders
            .iter()
            .copied()
            .filter(|r| Runtime::ALL.contains(r))
            .collect();
        let map_source = available
            .iter()
            .copied()
            .find(|r| *r != Runtime::Rootless)
            .unwrap_or(Runtime::Rootless);
        Some(Bench {
            maps: runtimes.map_arguments(map_source),
            runtimes,
            available,
            loaders,
            dir: shared_tempdir(),
            _turn: turn,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dockers(&self) -> Vec<Runtime> {
        let docker = |r: &&Runtime| **r != Runtime::Rootless;
        self.available.iter().filter(docker).copied().collect()
    }

    pub fn rootless(&self) -> Vec<Runtime> {
        let rootless = |r: &&Runtime| **r == Runtime::Rootless;
        self.available.iter().filter(rootless).copied().collect()
    }

    /// The loaders that read zstd layers: both Podmans (Docker 20.10 does not).
    pub fn zstd_readers(&self) -> Vec<Runtime> {
        let podman = |r: &&Runtime| matches!(**r, Runtime::Rootless | Runtime::PodmanRootful);
        self.loaders.iter().filter(podman).copied().collect()
    }

    /// `idfit fix --runtime strict` from `source` to `destination`, which writes `output`.
    pub fn fix(&self, source: &str, destination: &str, _output: &Path) -> Fixed {
        idfit::fix(&self.maps, source, destination)
    }

    /// Fixes the docker archive `source` into a docker archive named `name` in the work
    /// directory, asserting that idfit succeeds, and returns the fix and the output path.
    pub fn fix_to_archive(&self, source: &Path, name: &str) -> (Fixed, PathBuf) {
        let output = self.path(name);
        let destination = format!("docker-archive:{}", output.display());
        let fixed = self.fix(&source.display().to_string(), &destination, &output);
        assert_eq!(
            fixed.exit_code,
            Some(0),
            "idfit fix failed: {}",
            fixed.stderr
        );
        (fixed, output)
    }

    /// `idfit check --runtime strict`: the exit code and the report.
    pub fn check(&self, image: &str) -> (Option<i32>, String) {
        idfit::check_strict(&self.maps, image)
    }

    /// Loads `path` into each of `runtimes` at once and removes what it loaded again.
    pub fn load(&self, runtimes: &[Runtime], path: &Path) -> Vec<(Runtime, Outcome)> {
        on_each(runtimes, |runtime| self.runtimes.load(runtime, path))
    }

    /// Loads `outputs` (docker archives) into `runtime`, many per `load` (see [`batches`]),
    /// and removes them again. A merged archive the runtime refuses, or that loads without
    /// one of its tags, is loaded image by image instead, to say which image fails.
    pub fn load_merged(&self, runtime: Runtime, outputs: &[PathBuf]) -> Vec<(PathBuf, Outcome)> {
        let mut outcomes = Vec::new();
        for (index, batch) in batches(outputs).iter().enumerate() {
            let name = format!("merged-{}-{index}.tar", runtime.idfit_name());
            if let Some(outcome) = self.load_batch(runtime, &name, batch) {
                outcomes.extend(batch.iter().map(|o| (o.clone(), outcome.clone())));
                continue;
            }
            let alone = |output: &PathBuf| (output.clone(), self.runtimes.load(runtime, output));
            outcomes.extend(batch.iter().map(alone));
        }
        outcomes
    }

    /// The outcome of loading `batch` as one archive, if every image in it loaded.
    fn load_batch(&self, runtime: Runtime, name: &str, batch: &[PathBuf]) -> Option<Outcome> {
        let merged = self.path(name);
        fs::write(&merged, archive::merge_docker_archives(batch)).expect("write merged archive");
        let (outcome, images) = self.runtimes.load_kept(runtime, &merged);
        for image in &images {
            self.runtimes.remove(runtime, image);
        }

        // Podman prefixes `localhost/` to a name without a registry.
        let tags: Vec<String> = batch.iter().flat_map(|o| inspect::repo_tags(o)).collect();
        let loaded = |tag: &&String| {
            let suffix = format!("/{tag}");
            images.iter().any(|i| i == *tag || i.ends_with(&suffix))
        };
        let missing = tags.iter().filter(|t| !loaded(t)).count();
        if outcome.loaded && missing == 0 {
            return Some(outcome);
        }
        eprintln!(
            "{} did not load {name} ({}; {missing} tags missing); loading each image alone",
            runtime.idfit_name(),
            reason(&outcome.stderr),
        );
        None
    }
}

/// Splits `outputs` so that no batch holds two different blobs of one layer (one diff id):
/// a runtime that has unpacked a diff id skips every later blob with it, and that blob's
/// own compression would go unread. The same blob twice is the same bytes, and may share.
fn batches(outputs: &[PathBuf]) -> Vec<Vec<PathBuf>> {
    let mut batches: Vec<(BTreeMap<String, String>, Vec<PathBuf>)> = Vec::new();
    for output in outputs {
        let image = only_image(output);
        let diff_ids = image.config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let layers: Vec<(String, String)> = diff_ids
            .iter()
            .map(|d| d.as_str().unwrap_or_default().to_string())
            .zip(image.layers.iter().map(|l| l.digest.clone()))
            .collect();
        let fits = |seen: &BTreeMap<String, String>| {
            layers
                .iter()
                .all(|(diff_id, blob)| seen.get(diff_id).is_none_or(|b| b == blob))
        };
        match batches.iter_mut().find(|(seen, _)| fits(seen)) {
            Some((seen, batch)) => {
                seen.extend(layers);
                batch.push(output.clone());
            }
            None => batches.push((layers.into_iter().collect(), vec![output.clone()])),
        }
    }
    batches.into_iter().map(|(_, batch)| batch).collect()
}

/// Runs `action` for each runtime on its own thread: the daemons share nothing, and a load
/// spends most of its time waiting on one of them.
pub fn on_each<T: Send>(
    runtimes: &[Runtime],
    action: impl Fn(Runtime) -> T + Sync,
) -> Vec<(Runtime, T)> {
    let action = &action;
    std::thread::scope(|scope| {
        let handles: Vec<_> = runtimes
            .iter()
            .map(|&runtime| (runtime, scope.spawn(move || action(runtime))))
            .collect();
        handles
            .into_iter()
            .map(|(runtime, handle)| (runtime, handle.join().expect("runtime thread")))
            .collect()
    })
}

/// A temporary directory the rootless user can read: podman opens the archives itself.
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("idfit-fix-runtime-")
        .tempdir()
        .expect("create temporary directory");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .expect("make temporary directory readable");
    dir
}

/// The line of a runtime's stderr that says why: podman prints a bullet per transport, and
/// the archive's own bullet is the one that got as far as writing a blob.
pub fn reason(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|line| line.contains("writing blob"))
        .or_else(|| stderr.lines().last())
        .unwrap_or("")
        .trim()
}

pub fn verdict(outcome: Option<&Outcome>) -> &'static str {
    match outcome {
        None => "-",
        Some(o) if o.loaded => "loads",
        Some(_) => "FAILS",
    }
}

/// The id table as `u1000000→60001 g1000000→60001`.
pub fn table_text(fixed: &Fixed) -> String {
    let side = |name: &str, label: &str| {
        fixed
            .table(name)
            .iter()
            .map(|(from, to)| format!("{label}{from}→{to}"))
            .collect::<Vec<_>>()
    };
    let entries = [side("uids", "u"), side("gids", "g")].concat();
    if entries.is_empty() {
        "nothing to map".into()
    } else {
        entries.join(" ")
    }
}

pub fn only_image(path: &Path) -> ArchiveImage {
    let mut images = inspect::images(path);
    assert_eq!(images.len(), 1, "{} holds one image", path.display());
    images.remove(0)
}

/// For each layer, bottom first: `None` if the fix kept the blob byte for byte, or what the
/// rewrite changed, which [`blocks::compare`] has checked is ownership only.
pub fn layer_diffs(
    old: &ArchiveImage,
    new: &ArchiveImage,
) -> Result<Vec<Option<LayerDiff>>, String> {
    if old.layers.len() != new.layers.len() {
        return Err(format!(
            "{} layers became {}",
            old.layers.len(),
            new.layers.len()
        ));
    }
    let pairs = old.layers.iter().zip(&new.layers).enumerate();
    pairs
        .map(|(index, (a, b))| {
            if a.digest == b.digest {
                return Ok(None);
            }
            blocks::compare(&a.tar(), &b.tar(), &ACCOUNT_FILES)
                .map(Some)
                .map_err(|e| format!("layer {index} changed beyond ownership: {e}"))
        })
        .collect()
}

/// [`layer_diffs`] of the only image in two archives, in one line.
pub fn layer_summary(source: &Path, output: &Path) -> Result<String, String> {
    let diffs = layer_diffs(&only_image(source), &only_image(output))?;
    let kept = diffs.iter().filter(|d| d.is_none()).count();
    let headers: usize = diffs.iter().flatten().map(|d| d.header_blocks).sum();
    let files: Vec<String> = diffs
        .iter()
        .flatten()
        .flat_map(|d| d.content.clone())
        .collect();
    let mut summary = format!(
        "{kept} kept, {} rewritten: {headers} header blocks",
        diffs.len() - kept
    );
    if !files.is_empty() {
        summary += &format!(", content of {}", files.join(" "));
    }
    Ok(summary)
}
