//! Differential test: every case in `support::cases` is loaded into the real runtimes
//! (`docker load` on a userns-remapped overlay2 and vfs daemon, `podman load` as a rootless
//! user and as root on a store with `remap-uids`/`remap-gids`) and checked with the idfit
//! binary for the same runtime and id map. idfit must exit 0 exactly when the runtime loaded
//! the image and 1 when it refused it, and its `predicted_error` must appear verbatim in the
//! runtime's stderr.
//!
//! The runtimes come from `scripts/runtimes.sh start`; export what `scripts/runtimes.sh env`
//! prints before `cargo test --test runtime_differential`. Without them the tests are
//! skipped, except under `CI=true`, where that is a failure. Must run as root.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use support::archive;
use support::cases::{self, Case};
use support::idfit;
use support::runtimes::Runtimes;
use support::verdict::{self, Row};

/// The test functions run on parallel threads; the runtimes are shared, and one load at a
/// time keeps the timings and the daemons' logs readable.
static RUNTIMES_IN_USE: Mutex<()> = Mutex::new(());

#[test]
fn plain_ownership() {
    differential("ownership", cases::ownership());
}

#[test]
fn numeric_encodings() {
    differential("encodings", cases::encodings());
}

#[test]
fn entry_kinds_and_whiteouts() {
    differential("kinds", cases::kinds());
}

#[test]
fn extended_attributes() {
    differential("xattrs", cases::xattrs());
}

#[test]
fn several_layers_and_offenders() {
    differential("layering", cases::layering());
}

#[test]
fn compressed_and_oci_archives() {
    differential("compression", cases::compression());
}

fn differential(group: &str, cases: Vec<Case>) {
    let Some(runtimes) = Runtimes::from_env() else {
        return;
    };
    let _turn = RUNTIMES_IN_USE
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let workdir = shared_tempdir();

    let rows: Vec<Row> = cases
        .iter()
        .flat_map(|case| run_case(case, &runtimes, workdir.path()))
        .collect();

    let table = verdict::render(&rows);
    let disagreements = rows.iter().filter(|row| row.mismatch().is_some()).count();
    assert_eq!(
        disagreements, 0,
        "idfit disagrees with the runtimes in {group}:\n{table}"
    );
    println!("{group}:\n{table}");
}

/// Writes the case's archive, then loads it into and checks it for every runtime.
fn run_case(case: &Case, runtimes: &Runtimes, workdir: &Path) -> Vec<Row> {
    let bytes = archive::build(case.format, &case.tag(), &case.layers, case.compression);
    let path = workdir.join(format!("{}.tar", case.name));
    fs::write(&path, bytes).expect("write image archive");
    let image = format!("{}:{}", case.format.transport(), path.display());

    runtimes
        .available()
        .into_iter()
        .map(|runtime| {
            let real = runtimes.load(runtime, &path);
            let compared = !case.not_compared.contains(&runtime);
            let prediction = compared.then(|| idfit::check(runtimes, runtime, &image));
            Row {
                case: case.name.to_string(),
                runtime,
                real,
                prediction,
            }
        })
        .collect()
}

/// A temporary directory the rootless user can read: podman runs as that user and opens
/// the archive itself.
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("idfit-differential-")
        .tempdir()
        .expect("create temporary directory");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .expect("make temporary directory readable");
    dir
}
