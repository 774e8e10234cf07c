//! `fix` gives the same bytes for the same input whatever the number of threads, for gzip and
//! zstd layers too, where compression runs on every core.

use std::fs;
use std::process::Command;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/classic.tar");

#[test]
fn compressed_layers_are_rewritten_identically_on_any_number_of_threads() {
    let skopeo = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !skopeo {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "skopeo is needed; scripts/runtimes.sh installs it"
        );
        eprintln!("skipped: skopeo is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, flags) in [
        ("gzip", &["--dest-compress"][..]),
        ("zstd", &["--dest-compress-format", "zstd"][..]),
    ] {
        let layout = dir.path().join(name);
        let copy = Command::new("skopeo")
            .args(["copy", "-q"])
            .args(flags)
            .arg(format!("docker-archive:{EXAMPLE}"))
            .arg(format!("oci:{}", layout.display()))
            .output()
            .unwrap();
        assert!(
            copy.status.success(),
            "{}",
            String::from_utf8_lossy(&copy.stderr)
        );
        let outputs: Vec<Vec<u8>> = ["1", "3"]
            .iter()
            .map(|threads| {
                let out = dir.path().join(format!("{name}-{threads}.tar"));
                let fix = Command::new(env!("CARGO_BIN_EXE_idfit"))
                    .args([
                        "fix",
                        &format!("oci:{}", layout.display()),
                        &format!("oci-archive:{}", out.display()),
                    ])
                    .env("RAYON_NUM_THREADS", threads)
                    .output()
                    .unwrap();
                assert!(
                    fix.status.success(),
                    "{}",
                    String::from_utf8_lossy(&fix.stderr)
                );
                fs::read(out).unwrap()
            })
            .collect();
        assert!(
            outputs[0] == outputs[1],
            "{name}: output depends on the thread count"
        );
    }
}
