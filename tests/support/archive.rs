//! Image archives around test layers, in the two layouts `docker load` and `podman load`
//! read from a file:
//!
//! - the classic `docker save` layout: `manifest.json`, a config named `<hex>.json` whose
//!   `rootfs.diff_ids` and `history` match the layers, and one `<hex>/layer.tar` per layer
//!   (which may itself be compressed: loaders sniff the magic bytes);
//! - an OCI image layout (image-spec `image-layout.md`) packed in a tar, as `podman save
//!   --format oci-archive` writes it.

use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::tar::{Layer, plain_tar};

/// How each layer blob is compressed inside the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The outer layout of an image archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

impl Format {
    /// The transport prefix idfit (like skopeo) takes before the archive path.
    pub fn transport(self) -> &'static str {
        match self {
            Format::DockerArchive => "docker-archive",
            Format::OciArchive => "oci-archive",
        }
    }
}

/// A layer ready to be packed: its tar stream and the blob stored for it.
struct Blob {
    diff_id: String,
    digest: String,
    data: Vec<u8>,
}

impl Blob {
    fn new(layer: &Layer, compression: Compression) -> Blob {
        let tar = layer.to_tar();
        let data = compress(&tar, compression);
        Blob {
            diff_id: sha256(&tar),
            digest: sha256(&data),
            data,
        }
    }

    fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// Packs `layers` as an image tagged `tag` in the given layout.
pub fn build(format: Format, tag: &str, layers: &[Layer], compression: Compression) -> Vec<u8> {
    build_with_config(format, tag, layers, compression, json!({ "Cmd": ["/x"] }))
}

/// Like [`build`], with `run_config` as the config's `config` object (`User`, `Cmd`, ...).
pub fn build_with_config(
    format: Format,
    tag: &str,
    layers: &[Layer],
    compression: Compression,
    run_config: Value,
) -> Vec<u8> {
    let blobs: Vec<Blob> = layers.iter().map(|l| Blob::new(l, compression)).collect();
    let config = config_json(&blobs, "amd64", run_config);
    match format {
        Format::DockerArchive => docker_archive(tag, &blobs, &config),
        Format::OciArchive => oci_archive(tag, &blobs, &config, compression),
    }
}

fn config_json(blobs: &[Blob], architecture: &str, run_config: Value) -> Vec<u8> {
    let diff_ids: Vec<&str> = blobs.iter().map(|b| b.diff_id.as_str()).collect();
    let history: Vec<Value> = (0..blobs.len())
        .map(|i| json!({ "created_by": format!("idfit differential layer {i}") }))
        .collect();
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "config": run_config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history,
    });
    serde_json::to_vec(&config).expect("config serialises")
}

fn docker_archive(tag: &str, blobs: &[Blob], config: &[u8]) -> Vec<u8> {
    let config_name = format!("{}.json", hex(&sha256(config)));
    let mut members = Vec::new();
    let mut layer_paths = Vec::new();
    for blob in blobs {
        let path = format!("{}/layer.tar", blob.hex());
        members.push((path.clone(), blob.data.clone()));
        layer_paths.push(path);
    }

    let manifest = json!([{ "Config": config_name, "RepoTags": [tag], "Layers": layer_paths }]);
    members.push((config_name, config.to_vec()));
    members.push((
        "manifest.json".to_string(),
        manifest.to_string().into_bytes(),
    ));
    plain_tar(&members)
}

fn oci_archive(tag: &str, blobs: &[Blob], config: &[u8], compression: Compression) -> Vec<u8> {
    let layer_type = match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    };
    let manifest = manifest_json(blobs, config, layer_type);

    let mut members = vec![oci_layout_member()];
    for blob in blobs {
        members.push((blob_path(&blob.digest), blob.data.clone()));
    }
    members.push((blob_path(&sha256(config)), config.to_vec()));
    members.push((blob_path(&sha256(&manifest)), manifest.clone()));
    members.push(("index.json".to_string(), index_json(tag, &manifest)));
    plain_tar(&members)
}

fn oci_layout_member() -> (String, Vec<u8>) {
    (
        "oci-layout".to_string(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    )
}

fn manifest_json(blobs: &[Blob], config: &[u8], layer_type: &str) -> Vec<u8> {
    let layers: Vec<Value> = blobs
        .iter()
        .map(|b| descriptor(layer_type, &b.digest, b.data.len()))
        .collect();
    let config_type = "application/vnd.oci.image.config.v1+json";
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, &sha256(config), config.len()),
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One platform of a multi-platform image.
pub struct PlatformImage {
    /// The GOARCH name, as in the config and the index's `platform`.
    pub architecture: &'static str,
    pub layers: Vec<Layer>,
}

/// An OCI layout in a tar whose `index.json` names one image index tagged `tag`, which
/// lists a gzip-compressed image per platform: the shape `skopeo copy --all` and `docker
/// buildx` give a multi-platform image. Platforms must not share layers.
pub fn oci_multi_platform(tag: &str, platforms: &[PlatformImage]) -> Vec<u8> {
    let mut members = vec![oci_layout_member()];
    let mut manifests = Vec::new();
    for platform in platforms {
        let blobs: Vec<Blob> = platform
            .layers
            .iter()
            .map(|l| Blob::new(l, Compression::Gzip))
            .collect();
        let config = config_json(&blobs, platform.architecture, json!({ "Cmd": ["/x"] }));
        let manifest = manifest_json(
            &blobs,
            &config,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        );
        for blob in &blobs {
            members.push((blob_path(&blob.digest), blob.data.clone()));
        }
        members.push((blob_path(&sha256(&config)), config));

        let mut entry = descriptor(OCI_MANIFEST, &sha256(&manifest), manifest.len());
        entry["platform"] = json!({ "architecture": platform.architecture, "os": "linux" });
        manifests.push(entry);
        members.push((blob_path(&sha256(&manifest)), manifest));
    }

    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests })
        .to_string()
        .into_bytes();
    let mut entry = descriptor(OCI_INDEX, &sha256(&index), index.len());
    let reference = tag.rsplit_once(':').map_or("latest", |(_, r)| r);
    entry["annotations"] = json!({ "org.opencontainers.image.ref.name": reference });
    members.push((blob_path(&sha256(&index)), index));
    let top = json!({ "schemaVersion": 2, "manifests": [entry] });
    members.push(("index.json".to_string(), top.to_string().into_bytes()));
    plain_tar(&members)
}

fn index_json(tag: &str, manifest: &[u8]) -> Vec<u8> {
    let mut entry = descriptor(OCI_MANIFEST, &sha256(manifest), manifest.len());
    let reference = tag.rsplit_once(':').map_or("latest", |(_, r)| r);
    entry["annotations"] = json!({ "org.opencontainers.image.ref.name": reference });
    json!({ "schemaVersion": 2, "manifests": [entry] })
        .to_string()
        .into_bytes()
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> Value {
    json!({ "mediaType": media_type, "digest": digest, "size": size })
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex(digest))
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(data).expect("gzip into memory");
            encoder.finish().expect("gzip into memory")
        }
        Compression::Zstd => zstd::encode_all(data, 3).expect("zstd into memory"),
    }
}

/// One docker archive holding every image of the docker archives at `paths`, so that a
/// single `docker load` or `podman load` loads them all: blobs are named by digest, so
/// members of the same name are the same bytes, and the `manifest.json` lists are joined.
pub fn merge_docker_archives(paths: &[std::path::PathBuf]) -> Vec<u8> {
    let mut members = std::collections::BTreeMap::new();
    let mut manifest = Vec::new();
    for path in paths {
        for (name, data) in super::inspect::members(path) {
            if name == "manifest.json" {
                let items: Vec<Value> =
                    serde_json::from_slice(&data).expect("manifest.json is a JSON list");
                manifest.extend(items);
            } else {
                members.insert(name, data);
            }
        }
    }
    let mut members: Vec<(String, Vec<u8>)> = members.into_iter().collect();
    members.push((
        "manifest.json".to_string(),
        Value::Array(manifest).to_string().into_bytes(),
    ));
    plain_tar(&members)
}
