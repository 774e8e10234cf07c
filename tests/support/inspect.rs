//! Reads an image archive back the way a loader would, so a test can look at what `idfit
//! fix` wrote: the images of a `docker save` archive (through `manifest.json`) or of an OCI
//! layout in a tar (through `index.json`, following nested image indexes as image-spec
//! `image-index.md` allows), each with its config, manifest digest and layer blobs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The members of an archive by name, without any leading `./`.
pub type Members = BTreeMap<String, Vec<u8>>;

/// One image found in an archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// `os/architecture` from the config.
    pub platform: String,
    /// The manifest's digest; `None` in a docker archive, which stores no manifest.
    pub manifest_digest: Option<String>,
    pub config: Value,
    /// Layer blobs, bottom first, as stored (possibly compressed).
    pub layers: Vec<LayerBlob>,
}

/// A layer blob as stored in the archive.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub digest: String,
    pub blob: Vec<u8>,
}

impl LayerBlob {
    fn new(blob: Vec<u8>) -> LayerBlob {
        LayerBlob {
            digest: sha256(&blob),
            blob,
        }
    }

    /// The uncompressed tar stream: loaders sniff gzip and zstd by their magic bytes.
    pub fn tar(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.blob.get(..4) {
            Some([0x1f, 0x8b, _, _]) => {
                flate2::read::MultiGzDecoder::new(self.blob.as_slice())
                    .read_to_end(&mut out)
                    .expect("gunzip a layer");
            }
            Some([0x28, 0xb5, 0x2f, 0xfd]) => {
                out = zstd::decode_all(self.blob.as_slice()).expect("unzstd a layer");
            }
            _ => out.clone_from(&self.blob),
        }
        out
    }
}

/// Every regular file of the tar at `path`.
pub fn members(path: &Path) -> Members {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("open archive `{}`: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    let mut members = Members::new();
    for entry in archive.entries().expect("read archive entries") {
        let mut entry = entry.expect("read an archive entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .expect("member path")
            .to_string_lossy()
            .to_string();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .expect("read an archive member");
        members.insert(name.trim_start_matches("./").to_string(), data);
    }
    members
}

/// The images of the archive at `path`, in the order its index or manifest lists them.
pub fn images(path: &Path) -> Vec<ArchiveImage> {
    let members = members(path);
    if members.contains_key("index.json") {
        let index = json(&members, "index.json");
        oci_images(&members, &index)
    } else {
        docker_images(&members)
    }
}

/// The top-level `index.json` of an OCI archive, and every index it leads to.
pub fn oci_indexes(path: &Path) -> Vec<Value> {
    let members = members(path);
    let mut indexes = vec![json(&members, "index.json")];
    let mut next = 0;
    while next < indexes.len() {
        let children: Vec<Value> = descriptors(&indexes[next])
            .filter(|d| is_index(d))
            .map(|d| json(&members, &blob_name(d)))
            .collect();
        indexes.extend(children);
        next += 1;
    }
    indexes
}

fn docker_images(members: &Members) -> Vec<ArchiveImage> {
    let manifest = json(members, "manifest.json");
    let items = manifest.as_array().expect("manifest.json is an array");
    items
        .iter()
        .map(|item| {
            let config = json(members, item["Config"].as_str().expect("Config is a name"));
            let layers = item["Layers"].as_array().expect("Layers is an array");
            let layers = layers
                .iter()
                .map(|name| LayerBlob::new(member(members, name.as_str().expect("layer name"))))
                .collect();
            ArchiveImage {
                platform: platform(&config),
                manifest_digest: None,
                config,
                layers,
            }
        })
        .collect()
}

fn oci_images(members: &Members, index: &Value) -> Vec<ArchiveImage> {
    let mut images = Vec::new();
    for descriptor in descriptors(index) {
        let document = json(members, &blob_name(descriptor));
        if is_index(descriptor) {
            images.extend(oci_images(members, &document));
            continue;
        }
        let config = json(members, &blob_name(&document["config"]));
        let layers = descriptors_in(&document, "layers")
            .map(|d| LayerBlob::new(member(members, &blob_name(d))))
            .collect();
        images.push(ArchiveImage {
            platform: platform(&config),
            manifest_digest: descriptor["digest"].as_str().map(str::to_string),
            config,
            layers,
        });
    }
    images
}

fn descriptors(index: &Value) -> impl Iterator<Item = &Value> {
    descriptors_in(index, "manifests")
}

fn descriptors_in<'a>(document: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    document[field].as_array().into_iter().flatten()
}

fn is_index(descriptor: &Value) -> bool {
    matches!(
        descriptor["mediaType"].as_str(),
        Some(
            "application/vnd.oci.image.index.v1+json"
                | "application/vnd.docker.distribution.manifest.list.v2+json"
        )
    )
}

fn platform(config: &Value) -> String {
    let field = |name: &str| config[name].as_str().unwrap_or("?").to_string();
    format!("{}/{}", field("os"), field("architecture"))
}

fn blob_name(descriptor: &Value) -> String {
    let digest = descriptor["digest"]
        .as_str()
        .expect("descriptor has a digest");
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn member(members: &Members, name: &str) -> Vec<u8> {
    members
        .get(name)
        .unwrap_or_else(|| panic!("the archive has no member `{name}`"))
        .clone()
}

fn json(members: &Members, name: &str) -> Value {
    serde_json::from_slice(&member(members, name))
        .unwrap_or_else(|e| panic!("member `{name}` is not JSON: {e}"))
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The `RepoTags` of every image in the docker archive at `path`.
pub fn repo_tags(path: &Path) -> Vec<String> {
    let manifest = json(&members(path), "manifest.json");
    let items = manifest.as_array().expect("manifest.json is an array");
    items
        .iter()
        .flat_map(|item| item["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|tag| tag.as_str().map(str::to_string))
        .collect()
}
