//! The binary as a user meets it: exit codes, the JSON schema, and errors that name what is
//! wrong and leave nothing behind. Inputs are the example image and broken copies of it.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use support::idfit::run as idfit;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/classic.tar");

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_error(output: &Output, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
    assert!(output.stdout.is_empty(), "an error printed a report");
    let text = stderr(output);
    assert!(text.starts_with("error: "), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
}

/// Files in `dir` other than `keep`: what an error might have left behind.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !keep.iter().any(|k| p.file_name().unwrap() == *k))
        .collect()
}

#[test]
fn check_reports_the_classic_case_as_json() {
    let output = idfit(&["check", "--format", "json", EXAMPLE]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["runtime"], "strict");
    assert_eq!(report["loads"], false);
    let predicted = report["predicted_error"].as_str().unwrap();
    assert_eq!(
        predicted,
        "Error processing tar file(exit status 1): Container ID 1000000 cannot be mapped to a host ID"
    );

    let image = &report["platforms"][0];
    assert_eq!(image["required_id_range"]["uid"], 1000001);
    assert_eq!(image["user"]["uid"], 1000000);
    let findings = image["findings"].as_array().unwrap();
    let interim = findings
        .iter()
        .find(|f| f["path"] == "/tmp/build.tar.gz")
        .unwrap();
    assert_eq!(interim["visibility"]["state"], "deleted");
    assert_eq!(interim["visibility"]["layer_index"], 3);
    assert_eq!(interim["layer_index"], 2);
    assert_eq!(interim["kind"], "file");
    assert_eq!(interim["source"]["uid"], "octal");
    assert!(interim["history"].as_str().unwrap().contains("COPY"));
    for field in [
        "layer_digest",
        "diff_id",
        "uid",
        "gid",
        "runtimes",
        "offset",
    ] {
        assert!(!interim[field].is_null(), "{field}");
    }
}

#[test]
fn exit_status_follows_the_chosen_runtime() {
    // uid 65536 is inside rootless Podman's map (the user plus 65536 subordinate ids) only.
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.tar");
    let fix = idfit(&[
        "fix",
        "--map-uid",
        "1000000=65536",
        "--map-gid",
        "1000000=65536",
        "--runtime",
        "rootless",
        EXAMPLE,
    ]);
    assert_error(&fix, &["DESTINATION"]);
    let out = format!("docker-archive:{}", fixed.display());
    let rootless_map = [
        "--runtime",
        "rootless",
        "--uid-map",
        "0:1000:1",
        "--uid-map",
        "1:100000:65536",
    ];
    let table = ["--map-uid", "1000000=65536", "--map-gid", "1000000=65536"];
    let fix = idfit(&[&["fix"][..], &rootless_map, &table, &[EXAMPLE, &out]].concat());
    assert_eq!(fix.status.code(), Some(0), "{}", stderr(&fix));
    let path = fixed.to_str().unwrap();
    let rootless = idfit(&[&["check"][..], &rootless_map, &[path]].concat());
    assert_eq!(
        rootless.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rootless.stdout)
    );
    assert_eq!(
        idfit(&["check", "--runtime", "docker", path]).status.code(),
        Some(1)
    );
}

#[test]
fn broken_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let original = fs::read(EXAMPLE).unwrap();

    let missing = dir.path().join("missing.tar");
    assert_error(
        &idfit(&["check", missing.to_str().unwrap()]),
        &["missing.tar"],
    );

    let text = dir.path().join("notes.txt");
    fs::write(&text, "not an image at all\n").unwrap();
    assert_error(
        &idfit(&["check", text.to_str().unwrap()]),
        &["notes.txt", "hint:"],
    );

    let truncated = dir.path().join("truncated.tar");
    fs::write(&truncated, &original[..original.len() / 2 + 100]).unwrap();
    assert_error(
        &idfit(&["check", &format!("docker-archive:{}", truncated.display())]),
        &["truncated.tar", "Caused by"],
    );

    // Flip one byte of a layer's content: its diff_id no longer matches the config.
    let corrupt = dir.path().join("corrupt.tar");
    let mut bytes = original.clone();
    let at = find(&bytes, b"createServer").unwrap();
    bytes[at] ^= 0x20;
    fs::write(&corrupt, &bytes).unwrap();
    assert_error(
        &idfit(&["check", corrupt.to_str().unwrap()]),
        &["corrupt.tar", "digest"],
    );

    assert_error(&idfit(&["check", "docker://alpine"]), &["docker", "hint:"]);
    assert_error(&idfit(&["check", "--uid-map", "0:1", EXAMPLE]), &["0:1"]);
}

#[test]
fn malformed_layouts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(layout.join("index.json"), "{").unwrap();
    assert_error(
        &idfit(&["check", &format!("oci:{}", layout.display())]),
        &["index.json", "JSON"],
    );

    let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:bf3ddafc43cd121d9f11fc7b47e1d9f24aa8038b0d7eff8f9b2da8d6328a0550","size":42},"layers":[{"mediaType":"application/x-unknown","digest":"sha256:bf3ddafc43cd121d9f11fc7b47e1d9f24aa8038b0d7eff8f9b2da8d6328a0550","size":42}]}"#;
    let digest = sha256(manifest);
    fs::write(layout.join(format!("blobs/sha256/{digest}")), manifest).unwrap();
    let config = br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#;
    fs::write(
        layout.join(format!("blobs/sha256/{}", sha256(config))),
        config,
    )
    .unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{digest}","size":{}}}]}}"#,
        manifest.len()
    );
    fs::write(layout.join("index.json"), index).unwrap();
    assert_error(
        &idfit(&["check", layout.to_str().unwrap()]),
        &["application/x-unknown"],
    );
}

#[test]
fn fix_leaves_nothing_behind_and_never_overwrites_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing.tar");
    fs::write(&existing, b"keep me").unwrap();
    let out = format!("docker-archive:{}", existing.display());
    assert_error(
        &idfit(&["fix", EXAMPLE, &out]),
        &["existing.tar", "--force"],
    );
    assert_eq!(fs::read(&existing).unwrap(), b"keep me");

    // An id table that leaves an id uncovered is refused before anything is written.
    let target = format!("oci:{}", dir.path().join("never").display());
    assert_error(
        &idfit(&["fix", "--map-uid", "1000000=1000", EXAMPLE, &target]),
        &["gid 1000000", "hint:"],
    );
    assert_eq!(
        leftovers(dir.path(), &["existing.tar"]),
        Vec::<PathBuf>::new()
    );

    let source_before = fs::read(EXAMPLE).unwrap();
    let written = idfit(&["fix", "--force", EXAMPLE, &out]);
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    assert_eq!(
        fs::read(EXAMPLE).unwrap(),
        source_before,
        "the source changed"
    );
    assert_eq!(
        leftovers(dir.path(), &["existing.tar"]),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        idfit(&["check", existing.to_str().unwrap()]).status.code(),
        Some(0)
    );

    // --force replaces a directory too, with a layout or with an archive, and leaves no
    // copy of the old one beside it.
    let layout = dir.path().join("layout");
    fs::create_dir(&layout).unwrap();
    fs::write(layout.join("stale"), b"old").unwrap();
    for destination in [
        format!("oci:{}", layout.display()),
        format!("oci-archive:{}", layout.display()),
    ] {
        let written = idfit(&["fix", "--force", EXAMPLE, &destination]);
        assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
        assert_eq!(
            idfit(&["check", &destination]).status.code(),
            Some(0),
            "{destination}"
        );
    }
    assert!(layout.is_file());
    assert_eq!(
        leftovers(dir.path(), &["existing.tar", "layout"]),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn fix_is_deterministic_and_keeps_untouched_layers() {
    let dir = tempfile::tempdir().unwrap();
    let outputs: Vec<Vec<u8>> = (0..2)
        .map(|round| {
            let path = dir.path().join(format!("out{round}.tar"));
            let threads = if round == 0 { "1" } else { "4" };
            let output = Command::new(env!("CARGO_BIN_EXE_idfit"))
                .args(["fix", EXAMPLE, &format!("oci-archive:{}", path.display())])
                .env("RAYON_NUM_THREADS", threads)
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            fs::read(path).unwrap()
        })
        .collect();
    assert!(
        outputs[0] == outputs[1],
        "output depends on the thread count"
    );

    let plan = idfit(&["fix", "--dry-run", "--format", "json", EXAMPLE]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let layers = plan["plan"]["images"][0]["layers"].as_array().unwrap();
    let kept: Vec<&str> = layers
        .iter()
        .filter(|l| l["rewrite"] == false)
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "only the layer that deletes the file is untouched"
    );
    let listing = String::from_utf8_lossy(&outputs[0]).into_owned();
    assert!(listing.contains(&format!("blobs/sha256/{}", &kept[0]["sha256:".len()..])));
    assert_eq!(plan["plan"]["table"]["uids"]["1000000"], 60001);
}

#[test]
fn help_documents_exit_status() {
    let help = idfit(&["check", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "Exit status:",
        "0  the image loads",
        "1  it would not",
        "2  an error",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn sha256(bytes: &[u8]) -> String {
    idfit::image::Digest::of(bytes).hex().to_owned()
}

#[test]
fn maps_come_from_host_files_under_root() {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc");
    fs::create_dir_all(etc.join("docker")).unwrap();
    fs::write(
        etc.join("docker/daemon.json"),
        r#"{"userns-remap": "builder"}"#,
    )
    .unwrap();
    fs::write(etc.join("subuid"), "builder:100000:2000000\n").unwrap();
    fs::write(etc.join("subgid"), "builder:100000:2000000\n").unwrap();
    let root_arg = root.path().to_str().unwrap();

    // A range of two million ids holds 1000000: dockerd configured so loads the example.
    let docker = idfit(&["check", "--runtime", "docker", "--root", root_arg, EXAMPLE]);
    assert_eq!(
        docker.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&docker.stdout)
    );
    let named = idfit(&[
        "check",
        "--runtime",
        "docker-vfs",
        "--subuid-user",
        "builder",
        "--root",
        root_arg,
        EXAMPLE,
    ]);
    assert_eq!(named.status.code(), Some(0));
    let unknown = idfit(&[
        "check",
        "--subuid-user",
        "nobody-here",
        "--root",
        root_arg,
        EXAMPLE,
    ]);
    assert_error(&unknown, &["nobody-here", "subuid", "hint:"]);
}

#[test]
fn sarif_lists_each_finding() {
    let output = idfit(&["check", "--format", "sarif", EXAMPLE]);
    assert_eq!(output.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    assert_eq!(results[0]["ruleId"], "IDFIT001");
    assert_eq!(results[0]["level"], "error");
}

#[test]
fn text_report_summarises_and_lists_with_all() {
    let output = idfit(&["check", EXAMPLE]);
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "deleted in layer 3",
        "offending ids: uid 1000000 (8 entries), gid 1000000 (8 entries)",
        "user `app` is 1000000:1000000",
        "the image needs ids 0-1000000",
        "COPY --chown=app:app",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    assert!(!text.contains('\u{1b}'), "colour despite NO_COLOR");
}

#[test]
fn verbosity_adds_logs_on_stderr_and_quiet_removes_everything() {
    let plain = idfit(&["check", EXAMPLE]);
    let verbose = idfit(&["check", "-vv", EXAMPLE]);
    let quiet = idfit(&["check", "-q", "--format", "json", EXAMPLE]);
    for output in [&plain, &verbose, &quiet] {
        assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    }
    assert_eq!(plain.stdout, verbose.stdout, "logs went to stdout");
    let logs = stderr(&verbose);
    assert!(logs.contains("uid map 0:100000:65536"), "{logs}");
    assert!(
        logs.contains("layer 0 sha256:") && logs.contains("entries"),
        "{logs}"
    );
    assert_eq!(stderr(&quiet), "");
}
