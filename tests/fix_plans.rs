//! What `idfit fix` decides and writes, checked on images built in code, without runtimes:
//! the ids it picks and the names and tags the output carries.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use support::archive::{self, Compression, Format};
use support::idfit::run as idfit;
use support::tar::{Layer, file};

const B: i64 = 1_000_000;

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

/// An archive of one layer holding `x` owned by B:B, tagged `app:latest`, with `run_config`
/// as the config's `config` object; returns its path.
fn archive_of(dir: &Path, name: &str, format: Format, run_config: Value) -> PathBuf {
    let path = dir.join(name);
    let layer = Layer::of([file("x").owner(B, B).into()]);
    let bytes = archive::build_with_config(
        format,
        "app:latest",
        &[layer],
        Compression::Gzip,
        run_config,
    );
    fs::write(&path, bytes).unwrap();
    path
}

/// [`archive_of`] as a docker archive, named as idfit takes it.
fn image(dir: &Path, name: &str, run_config: Value) -> String {
    let path = archive_of(dir, name, Format::DockerArchive, run_config);
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

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn write_blob(layout: &Path, bytes: &[u8]) -> idfit::image::Digest {
    let digest = idfit::image::Digest::of(bytes);
    fs::write(layout.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
    digest
}

/// `(ref.name, digest)` of each top-level descriptor of a layout.
fn tags(layout: &Path) -> Vec<(String, String)> {
    read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let name = d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or_default();
            (name.to_owned(), d["digest"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn status(args: &[&str]) -> Option<i32> {
    idfit(args).status.code()
}

#[test]
fn a_docker_archive_name_without_a_tag_gets_latest() {
    let dir = tempfile::tempdir().unwrap();
    let source = image(dir.path(), "source.tar", json!({ "Cmd": ["/x"] }));
    let out = dir.path().join("out.tar");
    succeeds(&[
        "fix",
        &source,
        &format!("docker-archive:{}:team/app", out.display()),
    ]);
    let listing = Command::new("tar")
        .args(["-xOf", out.to_str().unwrap(), "manifest.json"])
        .output()
        .unwrap();
    let manifest: Value = serde_json::from_slice(&listing.stdout).unwrap();
    assert_eq!(manifest[0]["RepoTags"], json!(["team/app:latest"]));
    let digest = format!(
        "docker-archive:{}:app@sha256:00",
        dir.path().join("d.tar").display()
    );
    assert_eq!(status(&["fix", &source, &digest]), Some(2));
}

#[test]
fn oci_tags_name_the_fixed_image_alone_and_other_tags_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("src");
    fs::create_dir(&layout).unwrap();
    let archive_path = archive_of(dir.path(), "src.tar", Format::OciArchive, json!({}));
    let unpacked = Command::new("tar")
        .args([
            "-xf",
            archive_path.to_str().unwrap(),
            "-C",
            layout.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(unpacked.success());

    // A second tag on the same manifest, and an artifact (a signature-like referrer).
    let mut index = read_json(&layout.join("index.json"));
    let image = index["manifests"][0].clone();
    let mut second = image.clone();
    second["annotations"]["org.opencontainers.image.ref.name"] = json!("v1");
    let empty = write_blob(&layout, b"{}");
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": image["mediaType"], "digest": image["digest"], "size": image["size"]},
    }))
    .unwrap();
    let artifact_digest = write_blob(&layout, &artifact);
    let artifact_descriptor = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": artifact_digest.to_string(),
        "size": artifact.len(),
        "artifactType": "application/vnd.example.signature",
    });
    index["manifests"] = json!([image, second, artifact_descriptor]);
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    // The artifact is no image to check; the image is.
    let src = format!("oci:{}", layout.display());
    assert_eq!(status(&["check", &src]), Some(1));

    let out = dir.path().join("out");
    let out_ref = format!("oci:{}:fixed", out.display());
    succeeds(&["fix", &format!("{src}:latest"), &out_ref]);
    let after = tags(&out);
    let old = image_digest(&layout);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        after
            .iter()
            .any(|(name, digest)| name == "fixed" && *digest != old),
        "{after:?}"
    );
    assert!(after.contains(&("v1".to_owned(), old.clone())), "{after:?}");
    assert!(
        after.contains(&(String::new(), artifact_digest.to_string())),
        "{after:?}"
    );
    assert_eq!(status(&["check", &out_ref]), Some(0));
    assert_eq!(
        status(&["check", &format!("oci:{}:v1", out.display())]),
        Some(1)
    );

    // An image that needs no fix still takes the destination's tag.
    let again = dir.path().join("again");
    let again_ref = format!("oci:{}:final", again.display());
    succeeds(&["fix", &out_ref, &again_ref]);
    assert_eq!(status(&["check", &again_ref]), Some(0));
    // A tag for several images at once is refused.
    let many = format!("oci:{}:one", dir.path().join("many").display());
    assert_eq!(status(&["fix", &src, &many]), Some(2));
}

fn image_digest(layout: &Path) -> String {
    read_json(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}
