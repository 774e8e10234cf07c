//! What `idfit fix` decides and writes, checked on images built in code, without runtimes:
//! the ids it picks and the names and tags the output carries.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use support::archive::{self, Compression, Format};
use support::tar::{Layer, file};

const B: i64 = 1_000_000;

fn idfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idfit"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn succeeds(args: &[&str]) -> Output {
    let output = idfit(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A docker archive of one layer holding `x` owned by B:B, with `run_config` as the
/// config's `config` object.
fn image(dir: &Path, name: &str, run_config: Value) -> String {
    let path = dir.join(name);
    let layer = Layer::of([file("x").owner(B, B).into()]);
    let bytes = archive::build_with_config(
        Format::DockerArchive,
        "idfit-plans/app:latest",
        &[layer],
        Compression::None,
        run_config,
    );
    fs::write(&path, bytes).unwrap();
    format!("docker-archive:{}", path.display())
}

fn plan(source: &str) -> Value {
    let output = succeeds(&["fix", "--dry-run", "--format", "json", source]);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn remap_never_hands_out_the_id_the_process_runs_as() {
    let dir = tempfile::tempdir().unwrap();
    // 60001 is the first id remap would pick; here only the config's User names it.
    let source = image(dir.path(), "user.tar", json!({ "User": "60001:60001" }));
    let table = plan(&source)["plan"]["table"].clone();
    assert_eq!(table["uids"], json!({ B.to_string(): 60002 }), "{table}");
    assert_eq!(table["gids"], json!({ B.to_string(): 60002 }), "{table}");
}
