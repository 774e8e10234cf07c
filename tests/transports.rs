//! Every image layout in use, read and written: OCI layouts from skopeo (uncompressed, gzip,
//! zstd, directory and archive), docker archives in the Docker 25 and containerd forms, and a
//! multi-platform index. Each must give the same findings as the example it was made from, and
//! a fix must keep each layer's compression.
//!
//! skopeo writes the layouts; under CI=true it must be installed.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/classic.tar");

fn idfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idfit"))
        .args(args)
        .output()
        .unwrap()
}

fn skopeo_available() -> bool {
    let found = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "skopeo is needed; scripts/runtimes.sh installs it"
    );
    if !found {
        eprintln!("skipped: skopeo is not installed");
    }
    found
}

fn skopeo_copy(extra: &[&str], destination: &str) {
    let mut command = Command::new("skopeo");
    command
        .args(["copy", "-q"])
        .args(extra)
        .arg(format!("docker-archive:{EXAMPLE}"))
        .arg(destination);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `(path, visibility state)` of every finding, sorted.
fn findings(image: &str, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["check", "--format", "json"];
    args.extend(extra);
    args.push(image);
    let output = idfit(&args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut found: Vec<(String, String)> = report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["findings"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["visibility"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn skopeo_layouts_give_the_same_findings() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let expected = findings(EXAMPLE, &[]);
    assert_eq!(expected.len(), 8);
    let variants: [(&str, &[&str]); 3] = [
        ("plain", &[]),
        ("gzip", &["--dest-compress"]),
        ("zstd", &["--dest-compress-format", "zstd"]),
    ];
    for (name, flags) in variants {
        let layout = dir.path().join(name);
        skopeo_copy(flags, &format!("oci:{}:v1", layout.display()));
        assert_eq!(
            findings(&format!("oci:{}:v1", layout.display()), &[]),
            expected,
            "{name}"
        );
        assert_eq!(
            findings(layout.to_str().unwrap(), &[]),
            expected,
            "{name} detected"
        );
        let archive = dir.path().join(format!("{name}.tar"));
        skopeo_copy(flags, &format!("oci-archive:{}", archive.display()));
        assert_eq!(
            findings(&format!("oci-archive:{}", archive.display()), &[]),
            expected,
            "{name} archive"
        );
        fix_keeps_compression(&layout, name, dir.path());
    }
}

/// Fixing a layout keeps each layer's media type and compression.
fn fix_keeps_compression(layout: &Path, name: &str, dir: &Path) {
    let fixed = dir.join(format!("{name}-fixed"));
    let output = idfit(&[
        "fix",
        &format!("oci:{}", layout.display()),
        &format!("oci:{}", fixed.display()),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest_of = |root: &Path| {
        let index = read_json(&root.join("index.json"));
        read_json(&blob(
            root,
            index["manifests"][0]["digest"].as_str().unwrap(),
        ))
    };
    let (before, after) = (manifest_of(layout), manifest_of(&fixed));
    assert!(after["annotations"]["org.idfit.source-manifest"].is_string());
    for (old, new) in before["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["layers"].as_array().unwrap())
    {
        assert_eq!(old["mediaType"], new["mediaType"], "{name}");
        let magic = |root: &Path, layer: &Value| {
            fs::read(blob(root, layer["digest"].as_str().unwrap())).unwrap()[..4].to_vec()
        };
        assert_eq!(
            magic(layout, old)[..2],
            magic(&fixed, new)[..2],
            "{name}: compression changed"
        );
    }
    assert_eq!(
        idfit(&["check", &format!("oci:{}", fixed.display())])
            .status
            .code(),
        Some(0)
    );
}

/// Writes a tar archive of the files under `root`, plus `extra` members.
fn archive(root: &Path, extra: &[(&str, Vec<u8>)], path: &Path) {
    let mut builder = tar::Builder::new(fs::File::create(path).unwrap());
    builder.append_dir_all(".", root).unwrap();
    for (name, bytes) in extra {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, &bytes[..]).unwrap();
    }
    builder.into_inner().unwrap().flush().unwrap();
}

#[test]
fn docker_25_and_containerd_archives() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let expected = findings(EXAMPLE, &[]);
    for (name, flags) in [
        ("docker25", &[][..]),
        ("containerd", &["--dest-compress"][..]),
    ] {
        let layout = dir.path().join(name);
        skopeo_copy(flags, &format!("oci:{}", layout.display()));
        let index = read_json(&layout.join("index.json"));
        let manifest = read_json(&blob(
            &layout,
            index["manifests"][0]["digest"].as_str().unwrap(),
        ));
        let member = |d: &Value| {
            format!(
                "blobs/sha256/{}",
                d["digest"].as_str().unwrap().trim_start_matches("sha256:")
            )
        };
        let docker_manifest = json!([{
            "Config": member(&manifest["config"]),
            "RepoTags": ["example/classic:latest"],
            "Layers": manifest["layers"].as_array().unwrap().iter().map(member).collect::<Vec<_>>(),
        }]);
        if name == "containerd" {
            nest_index(&layout);
        }
        let path = dir.path().join(format!("{name}.tar"));
        archive(
            &layout,
            &[(
                "manifest.json",
                serde_json::to_vec(&docker_manifest).unwrap(),
            )],
            &path,
        );
        assert_eq!(findings(path.to_str().unwrap(), &[]), expected, "{name}");
        assert_eq!(
            findings(&format!("oci-archive:{}", path.display()), &[]),
            expected,
            "{name} as OCI"
        );
    }
}

/// Puts the layout's index one level down, as the containerd image store exports it.
fn nest_index(layout: &Path) {
    let inner = fs::read(layout.join("index.json")).unwrap();
    let digest = idfit::image::Digest::of(&inner);
    fs::write(blob(layout, &digest.to_string()), &inner).unwrap();
    let outer = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest.to_string(), "size": inner.len()}
    ]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&outer).unwrap(),
    )
    .unwrap();
}

#[test]
fn multi_platform_indexes_are_checked_per_platform_and_fixed_whole() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("multi");
    skopeo_copy(&["--dest-compress"], &format!("oci:{}", layout.display()));
    let index = read_json(&layout.join("index.json"));
    let amd64 = index["manifests"][0].clone();
    let mut arm64 = amd64.clone();
    let manifest = fs::read(blob(&layout, amd64["digest"].as_str().unwrap())).unwrap();
    // A second platform with the same layers but its own config and manifest.
    let manifest_value: Value = serde_json::from_slice(&manifest).unwrap();
    let mut config = read_json(&blob(
        &layout,
        manifest_value["config"]["digest"].as_str().unwrap(),
    ));
    config["architecture"] = json!("arm64");
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = idfit::image::Digest::of(&config_bytes);
    fs::write(blob(&layout, &config_digest.to_string()), &config_bytes).unwrap();
    let mut arm_manifest = manifest_value.clone();
    arm_manifest["config"] = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len()});
    let arm_bytes = serde_json::to_vec(&arm_manifest).unwrap();
    let arm_digest = idfit::image::Digest::of(&arm_bytes);
    fs::write(blob(&layout, &arm_digest.to_string()), &arm_bytes).unwrap();
    let mut amd64 = amd64;
    amd64["platform"] = json!({"os": "linux", "architecture": "amd64"});
    arm64["platform"] = json!({"os": "linux", "architecture": "arm64"});
    arm64["digest"] = json!(arm_digest.to_string());
    arm64["size"] = json!(arm_bytes.len());
    let list = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd64, arm64]});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&list).unwrap(),
    )
    .unwrap();
    nest_index(&layout);

    let image = format!("oci:{}", layout.display());
    assert_eq!(findings(&image, &[]).len(), 16);
    assert_eq!(findings(&image, &["--platform", "linux/arm64"]).len(), 8);
    let missing = idfit(&["check", "--platform", "linux/s390x", &image]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("linux/amd64, linux/arm64"));

    let fixed = dir.path().join("fixed.tar");
    let output = idfit(&["fix", &image, &format!("oci-archive:{}", fixed.display())]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = idfit(&["check", "--format", "json", fixed.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    let platforms: Vec<&str> = report["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let refusal = idfit(&[
        "fix",
        &image,
        &format!("docker-archive:{}", dir.path().join("one.tar").display()),
    ]);
    assert_eq!(refusal.status.code(), Some(2));

    // One platform fixed: the other is carried over as it was, and still fails.
    let arm_only = dir.path().join("arm-only");
    let arm_only_ref = format!("oci:{}", arm_only.display());
    let output = idfit(&["fix", "--platform", "linux/arm64", &image, &arm_only_ref]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = |platform: &str| {
        idfit(&["check", "--platform", platform, &arm_only_ref])
            .status
            .code()
    };
    assert_eq!(status("linux/arm64"), Some(0));
    assert_eq!(status("linux/amd64"), Some(1));
}
